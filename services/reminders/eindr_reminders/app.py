"""``create_app()``: the reminders API process (uvicorn --factory eindr_reminders.app:create_app)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from eindr_common.app import build_app
from fastapi import FastAPI

from .api import notifications, router
from .clients import FriendsClient, UsersClient
from .notifications import DeliveryHub
from .settings import reminders_settings

SOURCE_MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def migrations_dir() -> Path:
    configured = reminders_settings().reminders_migrations_dir
    return Path(configured) if configured else SOURCE_MIGRATIONS


def create_app() -> FastAPI:
    settings = reminders_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        common = app.state.settings
        app.state.reminders_settings = settings
        app.state.users = UsersClient(settings.users_url, common.internal_token_secret, cache_s=30)
        app.state.friends = FriendsClient(
            settings.friends_url, common.internal_token_secret, max_items=settings.reminders_shared_max
        )
        app.state.hub = DeliveryHub(app.state.redis)
        app.state.hub.start()
        try:
            yield
        finally:
            await app.state.hub.stop()
            await app.state.users.aclose()
            await app.state.friends.aclose()

    app = build_app("reminders", database=True, redis=True, migrations=migrations_dir(), lifespan=lifespan)
    app.include_router(router)
    app.include_router(notifications)
    return app
