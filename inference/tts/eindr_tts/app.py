"""``create_app()``: the TTS server (uvicorn eindr_tts.app:create_app --factory --port 8204)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from eindr_common.app import add_readiness_check, build_app
from eindr_common.errors import ServiceUnavailable
from fastapi import FastAPI

from .api import router
from .config import TTSSettings, get_settings

log = logging.getLogger("eindr.tts")


def create_app(settings: TTSSettings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from .engine import TTSEngine

        engine = await asyncio.to_thread(TTSEngine, settings)
        await asyncio.to_thread(engine.warm_up)
        app.state.engine = engine
        log.info(
            "tts engines loaded",
            extra={
                "fields": {
                    "engines": list(engine.engines),
                    "voices": len(engine.voices),
                }
            },
        )
        try:
            yield
        finally:
            engine.close()

    app = build_app("tts", lifespan=lifespan, settings=settings)
    app.state.settings = settings

    async def model_ready() -> None:
        engine = getattr(app.state, "engine", None)
        if engine is None or not engine.ready:
            raise ServiceUnavailable("engines not loaded")

    add_readiness_check(app, "model", model_ready)
    app.include_router(router)
    return app
