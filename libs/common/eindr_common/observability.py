"""Request ids, one JSON log line per request, Prometheus request metrics, Sentry.

The middleware is plain ASGI (not BaseHTTPMiddleware) so it streams bodies untouched and
costs microseconds per request: the gateway sits on every call.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "x-request-id"

REQUESTS = Counter(
    "eindr_http_requests_total", "HTTP requests handled", ["service", "method", "route", "status"]
)
LATENCY = Histogram(
    "eindr_http_request_duration_seconds",
    "HTTP request latency (until the response starts streaming its end)",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


@dataclass
class RequestContext:
    request_id: str
    uid: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar("eindr_request", default=None)


def current_request() -> RequestContext | None:
    return _current.get()


def current_request_id() -> str | None:
    ctx = _current.get()
    return ctx.request_id if ctx else None


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        ctx = _current.get()
        if ctx is not None:
            entry["request_id"] = ctx.request_id
            if ctx.uid:
                entry["uid"] = ctx.uid
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's own access log would duplicate our one line per request.
    logging.getLogger("uvicorn.access").disabled = True


def configure_sentry(dsn: str | None, environment: str, service: str) -> bool:
    if not dsn:
        return False
    import sentry_sdk

    sentry_sdk.init(dsn=dsn, environment=environment, server_name=service, traces_sample_rate=0.0, send_default_pii=False)
    return True


access_log = logging.getLogger("eindr.access")


class RequestContextMiddleware:
    """Assigns/propagates the request id, logs one line per request, records metrics."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service
        # prometheus-client's labels() takes a lock and builds a key on every call; the set
        # of (method, route, status) is small and fixed, so each child is looked up once.
        self._children: dict[tuple, tuple] = {}

    def _series(self, method: str, route: str, status: int) -> tuple:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (REQUESTS.labels(self.service, method, route, str(status)), LATENCY.labels(self.service, method, route))
            if len(self._children) < 10_000:  # a client inventing methods must not grow it forever
                self._children[key] = children
        return children

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                # Accept a caller's id only if it is a sane token; never log arbitrary bytes.
                if 0 < len(candidate) <= 128 and candidate.replace("-", "").isalnum():
                    request_id = candidate
                break
        ctx = RequestContext(request_id=request_id or uuid.uuid4().hex)
        token = _current.set(ctx)
        started = time.perf_counter()
        status_holder = [500]
        header_id = ctx.request_id.encode()

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(b"x-request-id", header_id)]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            # A proxy sets "eindr.route" to label by upstream route instead of its catch-all.
            route_path = scope.get("eindr.route") or getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            status = status_holder[0]
            requests, latency = self._series(method, route_path, status)
            requests.inc()
            latency.observe(elapsed)
            if route_path not in ("/healthz", "/readyz", "/metrics"):
                access_log.info(
                    "%s %s %s",
                    method,
                    scope["path"],
                    status,
                    extra={
                        "fields": {
                            "service": self.service,
                            "method": method,
                            "path": scope["path"],
                            "route": route_path,
                            "status": status,
                            "duration_ms": round(elapsed * 1000, 2),
                            **ctx.extra,
                        }
                    },
                )
            _current.reset(token)
