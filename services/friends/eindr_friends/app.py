"""``create_app``: the friends service (audience "friends", port 8106, schema friends)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from eindr_common.app import build_app
from fastapi import FastAPI

from . import api, outbox, worker
from .service import Deps
from .settings import FriendsSettings


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: FriendsSettings = app.state.settings
    deps = Deps(pool=app.state.pool, redis=app.state.redis, settings=settings)
    app.state.friends_deps = deps
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(outbox.relay_forever(app.state.pool, app.state.redis, stop), name="friends-outbox-relay"),
        asyncio.create_task(worker.consume_users_stream(deps, settings.friends_consumer_name, stop), name="friends-users-consumer"),
    ]
    try:
        yield
    finally:
        stop.set()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, timeout=5)


def create_app(settings: FriendsSettings | None = None) -> FastAPI:
    settings = settings or FriendsSettings()
    app = build_app(
        "friends",
        settings=settings,
        database=True,
        redis=True,
        migrations=settings.migrations_path,
        lifespan=_lifespan,
    )
    app.include_router(api.router)
    app.include_router(api.internal)
    return app
