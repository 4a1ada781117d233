"""``create_app()``: the chat server (uvicorn eindr_chat.app:create_app --factory --port 8203)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from eindr_common.app import add_readiness_check, build_app
from eindr_common.errors import (
    ServiceUnavailable,
    ValidationFailed,
    problem_response,
    validation_errors,
)
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from .api import router
from .config import ChatSettings, get_settings

log = logging.getLogger("eindr.chat")


def create_app(settings: ChatSettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from .engine import ChatEngine

        engine = await asyncio.to_thread(ChatEngine, settings)
        await asyncio.to_thread(engine.warm_up)
        engine.start()
        app.state.engine = engine
        log.info(
            "chat model loaded",
            extra={"fields": {"model": engine.model_id, "device": engine.device}},
        )
        try:
            yield
        finally:
            await asyncio.to_thread(engine.stop)

    app = build_app("chat", lifespan=lifespan, settings=settings)
    app.state.settings = settings

    async def on_validation(
        request: Request, exc: RequestValidationError
    ) -> JSONResponse:
        # problem+json as everywhere, plus TGI's `error`/`error_type` for its clients
        errors = validation_errors(exc)
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        problem = ValidationFailed(
            detail, errors=errors, extra={"error": detail, "error_type": "validation"}
        )
        return problem_response(problem, request)

    app.add_exception_handler(RequestValidationError, on_validation)  # type: ignore[arg-type]

    async def model_ready() -> None:
        engine = getattr(app.state, "engine", None)
        if engine is None or not engine.ready:
            raise ServiceUnavailable("model not loaded")

    add_readiness_check(app, "model", model_ready)
    app.include_router(router)
    return app
