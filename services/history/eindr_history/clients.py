"""Calls to other components: the embedding server (TEI ``/embed``, no internal token) and
the reminders service (``ServiceClient``, the caller's identity)."""

from __future__ import annotations

import httpx
from eindr_common.observability import current_request_id

EMBED_DIMS = 384
EMBED_BATCH = 32


class EmbeddingUnavailable(Exception):
    pass


class EmbeddingClient:
    def __init__(self, base_url: str, timeout_s: float) -> None:
        self._http = httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(timeout_s, connect=2.0))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def embed(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        rid = current_request_id()
        for i in range(0, len(texts), EMBED_BATCH):
            batch = texts[i : i + EMBED_BATCH]
            try:
                r = await self._http.post("/embed", json={"inputs": batch, "normalize": True, "truncate": True},
                                          headers={"x-request-id": rid} if rid else {})
            except httpx.HTTPError as exc:
                raise EmbeddingUnavailable(f"embedding server unreachable: {type(exc).__name__}") from exc
            if r.status_code >= 400:
                raise EmbeddingUnavailable(f"embedding server answered {r.status_code}: {r.text[:200]}")
            vectors = r.json()
            if len(vectors) != len(batch) or any(len(v) != EMBED_DIMS for v in vectors):
                raise EmbeddingUnavailable("embedding server returned vectors of the wrong shape")
            out.extend(vectors)
        return out
