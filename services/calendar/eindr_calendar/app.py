"""``create_app``: the calendar service (audience "calendar", port 8107, schema calendar)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from eindr_common.app import build_app
from fastapi import FastAPI

from . import api, service
from .clients import RemindersClient
from .crypto import Crypto
from .settings import CalendarSettings


def make_deps(app: FastAPI, settings: CalendarSettings) -> service.Deps:
    return service.Deps(
        pool=app.state.pool, redis=app.state.redis, settings=settings, crypto=Crypto(settings.encryption_keys),
        reminders=RemindersClient(settings.reminders_url, settings.internal_token_secret),
    )


def create_app(settings: CalendarSettings | None = None) -> FastAPI:
    settings = settings or CalendarSettings()
    Crypto(settings.encryption_keys)  # fail at start, not on the first request, when a key is malformed

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from concurrent.futures import ThreadPoolExecutor

        # CalDAV/Google clients are synchronous: their calls run in this pool, not the event loop's 6 default threads.
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=32, thread_name_prefix="calendar-io"))
        app.state.deps = make_deps(app, settings)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                await app.state.deps.reminders.aclose()

    app = build_app("calendar", settings=settings, database=True, redis=True, migrations=settings.migrations_path, lifespan=lifespan)
    app.include_router(api.router)
    app.include_router(api.webhooks)
    return app


__all__ = ["asyncio", "create_app"]
