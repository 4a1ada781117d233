"""Streaming reverse proxy to the owning service: bodies (audio uploads, SSE) pass through
without buffering, with a per-route size limit and upstream failures as problem+json."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import StreamingResponse

from eindr_common.errors import GatewayTimeout, PayloadTooLarge, ServiceUnavailable

# Hop-by-hop headers (RFC 9110 §7.6.1) and the ones the gateway replaces.
_DROP_REQUEST = frozenset(
    {"host", "connection", "keep-alive", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade",
     "authorization", "x-request-id", "content-length"}
)
_DROP_RESPONSE = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "x-request-id", "content-length"})


def body_limit(path: str, limits: dict[str, int]) -> int:
    best = max((p for p in limits if path.startswith(p)), key=len, default=None)
    return limits[best] if best else 1024 * 1024


async def _limited_body(request: Request, limit: int) -> AsyncIterator[bytes]:
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise PayloadTooLarge(f"The request body exceeds {limit} bytes for this route", code="payload_too_large")
        yield chunk


class Proxy:
    def __init__(self, connect_timeout_s: float, read_timeout_s: float) -> None:
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s, pool=connect_timeout_s),
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=200),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def forward(
        self,
        request: Request,
        service: str,
        base_url: str,
        extra_headers: dict[str, str],
        limit: int,
    ) -> StreamingResponse:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"The request body exceeds {limit} bytes for this route", code="payload_too_large")
        headers = [(k, v) for k, v in request.headers.items() if k not in _DROP_REQUEST]
        headers.extend(extra_headers.items())
        has_body = request.method not in ("GET", "HEAD", "OPTIONS", "DELETE") or declared not in (None, "0")
        upstream_request = self._http.build_request(
            request.method,
            base_url + request.url.path,
            params=request.url.query.encode(),
            headers=headers,
            content=_limited_body(request, limit) if has_body else None,
        )
        try:
            upstream = await self._http.send(upstream_request, stream=True)
        except httpx.TimeoutException as exc:
            raise GatewayTimeout(f"The {service} service did not answer in time", code="upstream_timeout") from exc
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as exc:
            raise ServiceUnavailable(f"The {service} service is unavailable", code="service_unavailable") from exc
        response_headers = {k: v for k, v in upstream.headers.items() if k not in _DROP_RESPONSE}
        return StreamingResponse(
            upstream.aiter_raw(),
            status_code=upstream.status_code,
            headers=response_headers,
            background=BackgroundTask(upstream.aclose),
        )
