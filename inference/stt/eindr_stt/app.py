"""``create_app()``: the STT server (uvicorn eindr_stt.app:create_app --factory --port 8201)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from eindr_common.app import add_readiness_check, build_app
from eindr_common.errors import PayloadTooLarge, ServiceUnavailable, problem_response
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from .api import models_router, router
from .config import STTSettings, get_settings

log = logging.getLogger("eindr.stt")


class ContentLengthLimit:
    """Refuse an oversized upload from its Content-Length, before the body is read."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if (
                    name == b"content-length"
                    and value.isdigit()
                    and int(value) > self.limit
                ):
                    problem = PayloadTooLarge(
                        f"The request body is larger than the {self.limit // (1024 * 1024)} MB limit.",
                        code="file_too_large",
                    )
                    await problem_response(problem, None)(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def create_app(settings: STTSettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from .engine import WhisperEngine

        engine = await asyncio.to_thread(WhisperEngine, settings)
        await asyncio.to_thread(engine.warm_up)
        app.state.engine = engine
        log.info(
            "whisper loaded",
            extra={
                "fields": {
                    "model_dir": str(engine.model_dir),
                    "device": engine.device,
                    "compute_type": engine.compute_type,
                }
            },
        )
        try:
            yield
        finally:
            engine.close()

    app = build_app("stt", lifespan=lifespan, settings=settings)
    app.state.settings = settings

    async def model_ready() -> None:
        engine = getattr(app.state, "engine", None)
        if engine is None or not engine.ready:
            raise ServiceUnavailable("model not loaded")

    add_readiness_check(app, "model", model_ready)
    app.include_router(router)
    app.include_router(models_router)
    # multipart overhead on top of the file itself
    app.add_middleware(
        ContentLengthLimit, limit=settings.stt_max_upload_bytes + 64 * 1024
    )
    return app
