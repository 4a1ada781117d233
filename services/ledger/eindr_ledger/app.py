"""``create_app``: the ledger service (audience "ledger", port 8105, schema ledger)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator

from eindr_common.app import build_app
from fastapi import FastAPI

from . import api, outbox, worker
from .clients import FriendsClient, RemindersClient
from .service import Deps
from .settings import LedgerSettings


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: LedgerSettings = app.state.settings
    friends = FriendsClient(
        settings.friends_url, settings.internal_token_secret,
        connect_timeout_s=settings.upstream_connect_timeout_s, read_timeout_s=settings.upstream_read_timeout_s,
    )
    reminders = RemindersClient(
        settings.reminders_url, settings.internal_token_secret,
        connect_timeout_s=min(settings.upstream_connect_timeout_s, settings.ledger_reminder_timeout_s),
        read_timeout_s=settings.ledger_reminder_timeout_s,
    )
    app.state.ledger_deps = Deps(pool=app.state.pool, redis=app.state.redis, friends=friends, reminders=reminders)
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(outbox.relay_forever(app.state.pool, app.state.redis, stop), name="ledger-outbox-relay"),
        asyncio.create_task(
            worker.consume_users_stream(app.state.pool, app.state.redis, settings.ledger_consumer_name, stop),
            name="ledger-users-consumer",
        ),
    ]
    # What is alive now (modules, the app, pools, clients) lives as long as the process:
    # frozen, it is no longer walked by the full collections that the many young objects
    # of large answers (~1,500 balance rows) set off every few dozen requests (~100k
    # objects each time: the p99 pauses of GET /balances).
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        stop.set()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, timeout=5)
        await friends.aclose()
        await reminders.aclose()


def create_app(settings: LedgerSettings | None = None) -> FastAPI:
    settings = settings or LedgerSettings()
    app = build_app(
        "ledger",
        settings=settings,
        database=True,
        redis=True,
        migrations=settings.migrations_path,
        lifespan=_lifespan,
    )
    app.include_router(api.router)
    return app
