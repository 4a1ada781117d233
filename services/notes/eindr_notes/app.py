"""``create_app``: the notes API (audience "notes", port 8104, schema notes).

Background work (transcription, embeddings, the sweep, ``user.deleted``) runs in the
worker process: ``eindr_notes.worker:create_app`` (port 9104)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from eindr_common.app import add_readiness_check, build_app

from . import api
from .clients import EmbeddingClient
from .settings import NotesSettings
from .storage import create_storage


def create_app(settings: NotesSettings | None = None) -> FastAPI:
    settings = settings or NotesSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.storage = create_storage(settings)
        app.state.embedder = EmbeddingClient(settings.intent_url, settings.embed_timeout_s)
        add_readiness_check(app, "storage", app.state.storage.check)
        try:
            yield
        finally:
            await app.state.embedder.aclose()

    app = build_app("notes", settings=settings, database=True, redis=True, migrations=settings.migrations_path, lifespan=lifespan)
    app.include_router(api.router)
    return app
