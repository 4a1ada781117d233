"""``create_app``: the audit service (audience "audit", port 8110, schema audit)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from eindr_common.app import build_app
from eindr_common.settings import CommonSettings
from fastapi import FastAPI

from . import api, worker

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.ingest_forever(app.state.pool, app.state.redis, stop), name="audit-ingest")
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, timeout=5)


def create_app(settings: CommonSettings | None = None) -> FastAPI:
    import os

    migrations = Path(os.environ.get("EINDR_AUDIT_MIGRATIONS_DIR", MIGRATIONS))
    app = build_app("audit", settings=settings, database=True, redis=True, migrations=migrations, lifespan=_lifespan)
    app.include_router(api.router)
    return app
