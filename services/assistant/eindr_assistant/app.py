"""``create_app()``: the assistant (audience "assistant", port 8109). It owns no tables:
its only state is conversation state and reply audio in Redis, with TTLs."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from eindr_common.app import build_app
from fastapi import FastAPI

from . import api
from .clients import Domain, Inference
from .pipeline import Deps
from .settings import AssistantSettings, get_settings


def create_app(settings: AssistantSettings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        inference = Inference(settings)
        domain = Domain(settings)
        redis_bin = aioredis.Redis.from_url(settings.redis_url, decode_responses=False, socket_timeout=5)
        app.state.deps = Deps(settings=settings, inference=inference, domain=domain, redis=app.state.redis, redis_bin=redis_bin)
        try:
            yield
        finally:
            for task in list(app.state.deps.background):
                task.cancel()
            await inference.aclose()
            await domain.aclose()
            await redis_bin.aclose()

    app = build_app("assistant", settings=settings, redis=True, lifespan=lifespan)
    app.include_router(api.router)
    return app
