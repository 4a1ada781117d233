"""``create_app``: the history API (audience "history", port 8108, schema history).

Background work (embeddings, retention, habits, ``user.deleted`` and preference events)
runs in the worker process: ``eindr_history.worker:create_app`` (port 9108)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from eindr_common.app import build_app
from eindr_common.http_client import ServiceClient
from fastapi import FastAPI

from . import api
from .clients import EmbeddingClient
from .settings import HistorySettings


def create_app(settings: HistorySettings | None = None) -> FastAPI:
    settings = settings or HistorySettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.embedder = EmbeddingClient(settings.intent_url, settings.embed_timeout_s)
        app.state.reminders = ServiceClient(
            settings.reminders_url, "reminders", settings.internal_token_secret,
            connect_timeout_s=settings.upstream_connect_timeout_s, read_timeout_s=settings.upstream_read_timeout_s,
        )
        try:
            yield
        finally:
            await app.state.embedder.aclose()
            await app.state.reminders.aclose()

    app = build_app("history", settings=settings, database=True, redis=True, migrations=settings.migrations_path, lifespan=lifespan)
    app.include_router(api.router)
    app.include_router(api.suggestions)
    return app
