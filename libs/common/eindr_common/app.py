"""``build_app``: the FastAPI application every Eindr component starts from.

It wires the cross-cutting parts once: problem+json errors, request ids and JSON access
logs, Prometheus metrics, Sentry, ``/healthz``/``/readyz``/``/metrics``, and (when asked)
the PostgreSQL pool, migrations and Redis client with their readiness checks.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .errors import install_problem_handlers
from .observability import RequestContextMiddleware, configure_logging, configure_sentry
from .settings import CommonSettings, common_settings

ReadinessCheck = Callable[[], Awaitable[object]]
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

log = logging.getLogger("eindr.app")


def add_readiness_check(app: FastAPI, name: str, check: ReadinessCheck) -> None:
    app.state.readiness_checks[name] = check


def build_app(
    name: str,
    *,
    lifespan: Lifespan | None = None,
    version: str = "0.1.0",
    settings: CommonSettings | None = None,
    database: bool = False,
    redis: bool = False,
    migrations: Path | None = None,
    docs: bool = True,
) -> FastAPI:
    settings = settings or common_settings()
    configure_logging(settings.log_level)
    configure_sentry(settings.sentry_dsn, settings.env, name)

    @asynccontextmanager
    async def combined_lifespan(app: FastAPI) -> AsyncIterator[None]:
        if database:
            from .db import create_pool

            if migrations is not None and settings.migrate_on_start:
                from .migrations import upgrade

                await asyncio.to_thread(upgrade, migrations, settings.database_url)
            app.state.pool = await create_pool(settings.database_url, application_name=name)
            add_readiness_check(app, "postgres", lambda: app.state.pool.fetchval("SELECT 1"))
        if redis:
            from .redis_client import create_redis

            app.state.redis = create_redis(settings.redis_url)
            add_readiness_check(app, "redis", lambda: app.state.redis.ping())
        try:
            if lifespan is not None:
                async with lifespan(app):
                    # Everything built at start-up lives as long as the process: moved out of
                    # the collector's reach, full collections stop walking it (the ledger
                    # measured p99 54 → 26 ms on its large answers).
                    gc.freeze()
                    yield
            else:
                gc.freeze()
                yield
        finally:
            if redis:
                await app.state.redis.aclose()
            if database:
                await app.state.pool.close()

    app = FastAPI(
        title=f"Eindr {name}",
        version=version,
        lifespan=combined_lifespan,
        docs_url="/docs" if docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.service_name = name
    app.state.settings = settings
    app.state.readiness_checks = {}
    install_problem_handlers(app)
    app.add_middleware(RequestContextMiddleware, service=name)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        results: dict[str, str] = {}
        ok = True
        for check_name, check in request.app.state.readiness_checks.items():
            try:
                await asyncio.wait_for(check(), timeout=2)
                results[check_name] = "ok"
            except Exception as exc:  # noqa: BLE001 (a readiness probe reports any failure, whatever it is)
                ok = False
                results[check_name] = f"error: {type(exc).__name__}"
        return JSONResponse({"status": "ok" if ok else "unavailable", "checks": results}, status_code=200 if ok else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
