"""``create_app``: the users service (audience "users", port 8102, schema users)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from eindr_common.app import build_app
from fastapi import FastAPI

from . import api, outbox
from .settings import UsersSettings


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    stop = asyncio.Event()
    relay = asyncio.create_task(outbox.relay_forever(app.state.pool, app.state.redis, stop), name="users-outbox-relay")
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(relay, timeout=5)


def create_app(settings: UsersSettings | None = None) -> FastAPI:
    settings = settings or UsersSettings()
    app = build_app(
        "users",
        settings=settings,
        database=True,
        redis=True,
        migrations=settings.migrations_path,
        lifespan=_lifespan,
    )
    app.include_router(api.router)
    app.include_router(api.internal)
    return app
