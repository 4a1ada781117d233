"""``create_app``: the auth service (audience "auth", port 8101, schema auth)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from eindr_common.app import build_app
from eindr_common.flags import FlagEvaluator
from fastapi import FastAPI

from . import api, worker
from .clients import UsersClient
from .settings import AuthSettings


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: AuthSettings = app.state.settings
    app.state.users_client = UsersClient(
        settings.users_url,
        settings.internal_token_secret,
        connect_timeout_s=settings.upstream_connect_timeout_s,
        read_timeout_s=settings.upstream_read_timeout_s,
    )
    app.state.flags = FlagEvaluator(app.state.redis)
    stop = asyncio.Event()
    consumer = asyncio.create_task(
        worker.consume_users_stream(app.state.pool, app.state.redis, settings.auth_consumer_name, stop),
        name="auth-users-stream-consumer",
    )
    try:
        yield
    finally:
        stop.set()
        try:
            await asyncio.wait_for(consumer, timeout=5)
        except (TimeoutError, asyncio.CancelledError):
            pass
        await app.state.users_client.aclose()


def create_app(settings: AuthSettings | None = None) -> FastAPI:
    settings = settings or AuthSettings()
    app = build_app(
        "auth",
        settings=settings,
        database=True,
        redis=True,
        migrations=settings.migrations_path,
        lifespan=_lifespan,
    )
    app.include_router(api.router)
    return app
