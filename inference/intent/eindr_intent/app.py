"""``create_app()``: the intent server (uvicorn eindr_intent.app:create_app --factory --port 8202)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from eindr_common.app import add_readiness_check, build_app
from eindr_common.errors import ServiceUnavailable
from fastapi import FastAPI

from .api import router
from .config import IntentSettings, get_settings

log = logging.getLogger("eindr.intent")


def create_app(settings: IntentSettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    # Weights come from a local directory; never reach for a model hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from .engine import IntentEngine

        engine = await asyncio.to_thread(IntentEngine, settings)
        await asyncio.to_thread(engine.warm_up)
        engine.batcher.start()
        app.state.engine = engine
        try:
            yield
        finally:
            await engine.batcher.stop()

    app = build_app("intent", lifespan=lifespan, settings=settings)
    app.state.settings = settings

    async def model_ready() -> None:
        engine = getattr(app.state, "engine", None)
        if engine is None or not engine.ready:
            raise ServiceUnavailable("model not loaded")

    add_readiness_check(app, "model", model_ready)
    app.include_router(router)
    return app
