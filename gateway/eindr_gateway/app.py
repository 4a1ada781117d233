"""The gateway application: authenticate, limit, lock, route."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from eindr_common.app import add_readiness_check, build_app
from eindr_common.errors import NotFound, Problem, problem_response
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.middleware import Middleware
from starlette.requests import Request as StarletteRequest
from starlette.types import ASGIApp, Receive, Scope, Send

from .account_state import AccountStateCache
from .config import GatewaySettings, gateway_settings
from .firebase import CertificateCache, FirebaseVerifier
from .gatekeeper import Gatekeeper
from .openapi import OpenAPIAggregator, merge_documents
from .proxy import Proxy, body_limit
from .ratelimit import RateLimiter

_DOMAIN = re.compile(r"^/v1/([a-z][a-z0-9_-]*)")
PROXY_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


class ProxyDispatch:
    """Serves every ``/v1/…`` request as a bare ASGI endpoint: gatekeeper, then proxy.

    The gateway sits on every call, and FastAPI's routing, dependency solving and
    exception middleware cost more CPU per request than the proxying itself (py-spy);
    everything else (docs, OpenAPI, health, metrics) goes on to the FastAPI app.
    """

    def __init__(self, app: ASGIApp, settings: GatewaySettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        request = StarletteRequest(scope, receive)
        started = False

        async def tracking_send(message: dict) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self._route(request, tracking_send)
        except Problem as problem:
            if started:
                raise
            await problem_response(problem, request)(scope, receive, send)

    async def _route(self, request: StarletteRequest, send: Send) -> None:
        settings = self.settings
        path = request.scope["path"]
        if request.scope["method"] not in PROXY_METHODS:
            raise Problem(f"{request.scope['method']} is not allowed", status=405, code="method_not_allowed")
        match = _DOMAIN.match(path)
        service = settings.routes.get(match.group(1)) if match else None
        if service is None or service not in settings.service_urls:
            raise NotFound(f"No service serves {path}", code="route_not_found")
        request.scope["eindr.route"] = f"/v1/{match.group(1)}"
        state = request.scope["app"].state
        admitted = await state.gatekeeper.admit(request, service)
        await state.proxy.forward(
            request,
            send,
            service,
            settings.service_urls[service],
            admitted.upstream_headers,
            admitted.response_headers,
            body_limit(path, settings.body_limits),
        )


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
        accounts = AccountStateCache(app.state.redis, settings.redis_url, ttl_s=settings.account_state_ttl_s)
        accounts.start()
        app.state.gatekeeper = Gatekeeper(settings, verifier, limiter, accounts)
        app.state.proxy = Proxy(settings.upstream_connect_timeout_s, settings.upstream_read_timeout_s)
        app.state.openapi = OpenAPIAggregator(settings.service_urls, settings.openapi_refresh_s)
        try:
            yield
        finally:
            await limiter.aclose()
            await app.state.proxy.aclose()
            await accounts.aclose()
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

    # Innermost of the user middleware: after request ids, logging, metrics and CORS, before
    # FastAPI's routing, which /v1/ traffic never needs.
    app.user_middleware.append(Middleware(ProxyDispatch, settings=settings))
    add_readiness_check(app, "rate_limit_storage", lambda: app.state.gatekeeper.limiter.ping())
    return app
