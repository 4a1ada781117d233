"""Streaming reverse proxy to the owning service: bodies (audio uploads, SSE) pass through
without buffering, with a per-route size limit and upstream failures as problem+json.

``forward`` answers straight on the ASGI ``send`` channel instead of returning a Starlette
response: a small body with a Content-Length (most API answers) goes out in one message,
and only an open-ended stream (SSE, audio) pays for Starlette's StreamingResponse, which
watches for the client going away so a long-lived upstream stream is closed with it.

The upstream client is aiohttp rather than httpx: under 32 concurrent requests httpx's
connection pool cost the gateway about 4 ms of CPU per request (measured with py-spy),
aiohttp a fraction of that, and the gateway sits on every call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from eindr_common.errors import GatewayTimeout, PayloadTooLarge, ServiceUnavailable
from multidict import CIMultiDict
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Send

# Upstream bodies up to this size are read whole and sent as one ASGI message.
_BUFFERED_BODY_MAX = 256 * 1024

# Hop-by-hop headers (RFC 9110 §7.6.1) and the ones the gateway replaces. A declared
# Content-Length is kept: uvicorn has already bounded the body to it, and upstreams that
# cannot read chunked bodies (or want the size before the bytes) get it.
_DROP_REQUEST = frozenset(
    {"host", "connection", "keep-alive", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade",
     "authorization", "x-request-id"}
)
_DROP_RESPONSE = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "x-request-id", "content-length",
     "content-encoding"}
)


def body_limit(path: str, limits: dict[str, int]) -> int:
    best = max((p for p in limits if path.startswith(p)), key=len, default=None)
    return limits[best] if best else 1024 * 1024


class _BodyTooLarge(Exception):
    pass


async def _limited_body(request: Request, limit: int) -> AsyncIterator[bytes]:
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise _BodyTooLarge
        if chunk:
            yield chunk


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body exceeds {limit} bytes for this route", code="payload_too_large")


class Proxy:
    def __init__(self, connect_timeout_s: float, read_timeout_s: float) -> None:
        self._timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout_s, sock_read=read_timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=1000, limit_per_host=500, keepalive_timeout=30),
                timeout=self._timeout,
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept", "Content-Type"),
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def forward(
        self,
        request: Request,
        send: Send,
        service: str,
        base_url: str,
        extra_headers: dict[str, str],
        response_headers: dict[str, str],
        limit: int,
    ) -> None:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        headers = CIMultiDict((k, v) for k, v in request.headers.items() if k not in _DROP_REQUEST)
        headers.update(extra_headers)
        has_body = request.method not in ("GET", "HEAD", "OPTIONS", "DELETE") or declared not in (None, "0")
        query = request.scope["query_string"]
        url = base_url + request.scope["path"] + ("?" + query.decode("latin-1") if query else "")
        try:
            upstream = await self._client().request(
                request.method,
                url,
                headers=headers,
                data=_limited_body(request, limit) if has_body else None,
                allow_redirects=False,
            )
        except _BodyTooLarge:
            raise _too_large(limit) from None
        except TimeoutError as exc:
            raise GatewayTimeout(f"The {service} service did not answer in time", code="upstream_timeout") from exc
        except aiohttp.ClientError as exc:
            if isinstance(exc.__cause__, _BodyTooLarge) or isinstance(exc.__context__, _BodyTooLarge):
                raise _too_large(limit) from None
            raise ServiceUnavailable(f"The {service} service is unavailable", code="service_unavailable") from exc
        raw_headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1"))
            for k, v in upstream.headers.items()
            if k.lower() not in _DROP_RESPONSE
        ]
        if upstream.headers.get("content-encoding"):
            raw_headers.append((b"content-encoding", upstream.headers["content-encoding"].encode("latin-1")))
        raw_headers.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response_headers.items())
        length = upstream.content_length
        if length is not None and length <= _BUFFERED_BODY_MAX:
            try:
                body = await upstream.read()
            except TimeoutError as exc:
                raise GatewayTimeout(f"The {service} service did not answer in time", code="upstream_timeout") from exc
            except aiohttp.ClientError as exc:
                raise ServiceUnavailable(f"The {service} service is unavailable", code="service_unavailable") from exc
            finally:
                upstream.release()
            if request.method != "HEAD":
                raw_headers.append((b"content-length", str(len(body)).encode()))
            await send({"type": "http.response.start", "status": upstream.status, "headers": raw_headers})
            await send({"type": "http.response.body", "body": body})
            return
        response = StreamingResponse(
            upstream.content.iter_any(),
            status_code=upstream.status,
            background=BackgroundTask(upstream.release),
        )
        response.raw_headers = raw_headers
        await response(request.scope, request.receive, send)
