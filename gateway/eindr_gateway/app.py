"""The gateway application: authenticate, limit, lock, route."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from eindr_common.app import add_readiness_check, build_app
from eindr_common.errors import NotFound

from .config import GatewaySettings, gateway_settings
from .firebase import CertificateCache, FirebaseVerifier
from .gatekeeper import Gatekeeper
from .openapi import OpenAPIAggregator, merge_documents
from .proxy import Proxy, body_limit
from .ratelimit import RateLimiter

_DOMAIN = re.compile(r"^/v1/([a-z][a-z0-9_-]*)")
PROXY_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or gateway_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        certs_http = httpx.AsyncClient()
        verifier = FirebaseVerifier(
            settings.firebase_project_id,
            CertificateCache(settings.firebase_certs_url, certs_http),
            clock_skew_s=settings.clock_skew_s,
            emulator=bool(settings.firebase_auth_emulator_host),
            cache_size=settings.token_cache_size,
        )
        limiter = RateLimiter(settings.redis_url, settings.rate_limits, settings.anonymous_rate_limit)
        app.state.gatekeeper = Gatekeeper(settings, verifier, limiter, app.state.redis)
        app.state.proxy = Proxy(settings.upstream_connect_timeout_s, settings.upstream_read_timeout_s)
        app.state.openapi = OpenAPIAggregator(settings.service_urls, settings.openapi_refresh_s)
        try:
            yield
        finally:
            await app.state.proxy.aclose()
            await certs_http.aclose()

    app = build_app("gateway", settings=settings, redis=True, lifespan=lifespan, docs=False)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=PROXY_METHODS,
        allow_headers=["authorization", "content-type", "idempotency-key", "last-event-id", "x-request-id"],
        expose_headers=[
            "x-request-id", "ratelimit", "ratelimit-policy", "retry-after", "idempotent-replayed",
            # The assistant's streamed audio reply carries the turn's data in these.
            "x-eindr-interaction-id", "x-eindr-conversation-id", "x-eindr-intent", "x-eindr-transcript",
            "x-eindr-reply", "x-eindr-actions", "x-eindr-timings", "x-eindr-awaiting-confirmation",
        ],
        max_age=600,
    )

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(request: Request) -> JSONResponse:
        documents = await request.app.state.openapi.documents()
        base = {"openapi": "3.1.0", "info": {"title": "Eindr API", "version": "1"}, "paths": {}}
        return JSONResponse(merge_documents(base, documents))

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="Eindr API")

    @app.api_route("/v1/{rest:path}", methods=PROXY_METHODS, include_in_schema=False)
    async def route(request: Request) -> Response:
        path = request.url.path
        match = _DOMAIN.match(path)
        service = settings.routes.get(match.group(1)) if match else None
        if service is None or service not in settings.service_urls:
            raise NotFound(f"No service serves {path}", code="route_not_found")
        request.scope["eindr.route"] = f"/v1/{match.group(1)}"
        gatekeeper: Gatekeeper = request.app.state.gatekeeper
        admitted = await gatekeeper.admit(request, service)
        response = await request.app.state.proxy.forward(
            request,
            service,
            settings.service_urls[service],
            admitted.upstream_headers,
            body_limit(path, settings.body_limits),
        )
        response.headers.update(admitted.response_headers)
        return response

    add_readiness_check(app, "rate_limit_storage", lambda: app.state.gatekeeper.limiter.ping())
    return app
