"""``create_app``: the notes API (audience "notes", port 8104, schema notes).

Background work (transcription, embeddings, the sweep, ``user.deleted``) runs in the
worker process: ``eindr_notes.worker:create_app`` (port 9104)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from eindr_common.app import add_readiness_check, build_app
from eindr_common.http_client import ServiceClient
from fastapi import FastAPI

from . import api
from .clients import EmbeddingClient, FriendsClient
from .settings import NotesSettings
from .storage import create_storage


def create_app(settings: NotesSettings | None = None) -> FastAPI:
    settings = settings or NotesSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.storage = create_storage(settings)
        app.state.embedder = EmbeddingClient(settings.intent_url, settings.embed_timeout_s)
        app.state.friends = FriendsClient(
            ServiceClient(settings.friends_url, "friends", settings.internal_token_secret,
                          connect_timeout_s=settings.upstream_connect_timeout_s, read_timeout_s=settings.upstream_read_timeout_s,
                          attempts=2),
            settings.notes_shared_max,
        )
        add_readiness_check(app, "storage", app.state.storage.check)
        try:
            yield
        finally:
            await app.state.embedder.aclose()
            await app.state.friends.aclose()

    app = build_app("notes", settings=settings, database=True, redis=True, migrations=settings.migrations_path, lifespan=lifespan)
    app.include_router(api.router)
    return app
