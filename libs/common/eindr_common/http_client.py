"""Typed calls between services: timeouts, bounded retries on idempotent calls, and the
caller's identity and request id carried along."""

from __future__ import annotations

from typing import Any

import httpx
import stamina

from .errors import GatewayTimeout, Problem, ServiceUnavailable
from .identity import Principal, mint_internal_token
from .observability import current_request_id

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


class UpstreamError(Problem):
    """A 4xx/5xx answer from another service, passed on with its own problem body."""

    def __init__(self, response: httpx.Response) -> None:
        try:
            body = response.json()
        except ValueError:
            body = {}
        super().__init__(
            body.get("detail") or f"{response.request.url.host} answered {response.status_code}",
            status=response.status_code if response.status_code < 500 else 502,
            code=body.get("code") or "upstream_error",
            title=body.get("title"),
            errors=body.get("errors"),
        )
        self.response = response


class _Retryable(Exception):
    pass


class ServiceClient:
    """One per (caller, target service). ``call`` mints a fresh internal token each time."""

    def __init__(
        self,
        base_url: str,
        audience: str,
        secret: str,
        *,
        connect_timeout_s: float = 2.0,
        read_timeout_s: float = 10.0,
        attempts: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.audience = audience
        self._secret = secret
        self._attempts = attempts
        self._http = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s),
            transport=transport,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def _headers(self, principal: Principal, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"authorization": "Bearer " + mint_internal_token(principal, self.audience, self._secret)}
        rid = current_request_id()
        if rid:
            headers["x-request-id"] = rid
        if extra:
            headers.update(extra)
        return headers

    async def call(
        self,
        method: str,
        path: str,
        principal: Principal,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        method = method.upper()
        attempts = self._attempts if method in IDEMPOTENT_METHODS or (headers and "idempotency-key" in {k.lower() for k in headers}) else 1

        async def once() -> httpx.Response:
            try:
                response = await self._http.request(
                    method, path, json=json, params=params, headers=self._headers(principal, headers)
                )
            except httpx.TimeoutException as exc:
                raise GatewayTimeout(f"{self.audience} did not answer in time", code="upstream_timeout") from exc
            except httpx.TransportError as exc:
                raise _Retryable(str(exc)) from exc
            if response.status_code in (502, 503, 504):
                raise _Retryable(f"{self.audience} answered {response.status_code}")
            return response

        try:
            async for attempt in stamina.retry_context(on=_Retryable, attempts=attempts, wait_initial=0.05, wait_max=0.5, timeout=None):
                with attempt:
                    response = await once()
        except _Retryable as exc:
            raise ServiceUnavailable(f"{self.audience} is unavailable", code="upstream_unavailable") from exc
        if response.status_code >= 400:
            raise UpstreamError(response)
        return response
