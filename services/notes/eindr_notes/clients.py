"""Outbound calls. The inference servers through their standard protocols: the OpenAI audio
API (``POST /v1/audio/transcriptions``) and TEI (``POST /embed``), so a real speaches/TEI
deployment can replace ours (they are not Eindr services: no internal token). The friends
service through ``ServiceClient`` with the end user's identity."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any, NamedTuple

import httpx
from eindr_common.errors import Problem
from eindr_common.http_client import ServiceClient
from eindr_common.identity import Principal
from eindr_common.observability import current_request_id

log = logging.getLogger("eindr.notes")

EMBED_DIMS = 384
EMBED_BATCH = 32


class InferenceUnavailable(Exception):
    """The server is down, slow or overloaded: worth retrying later."""


class InferenceRejected(Exception):
    """The server refused the input (4xx): retrying the same input cannot succeed."""


def _headers() -> dict[str, str]:
    rid = current_request_id()
    return {"x-request-id": rid} if rid else {}


def _raise_for(response: httpx.Response, what: str) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json()
        detail = body.get("detail") or body.get("error") or response.text
    except ValueError:
        detail = response.text
    detail = str(detail)[:300]
    if response.status_code >= 500 or response.status_code == 429:
        raise InferenceUnavailable(f"{what} answered {response.status_code}: {detail}")
    raise InferenceRejected(f"{what} refused the input ({response.status_code}): {detail}")


@dataclass
class Transcript:
    text: str
    language: str | None
    duration: float | None


class STTClient:
    def __init__(self, base_url: str, model: str, timeout_s: float) -> None:
        self.model = model
        self._http = httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(timeout_s, connect=3.0))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def transcribe(self, audio: bytes, filename: str, content_type: str, language: str | None) -> Transcript:
        data: dict[str, Any] = {"model": self.model, "response_format": "verbose_json"}
        if language:
            data["language"] = language
        try:
            response = await self._http.post(
                "/v1/audio/transcriptions", files={"file": (filename, audio, content_type)}, data=data, headers=_headers()
            )
        except httpx.HTTPError as exc:
            raise InferenceUnavailable(f"speech-to-text unreachable: {type(exc).__name__}") from exc
        _raise_for(response, "speech-to-text")
        body = response.json()
        return Transcript(text=(body.get("text") or "").strip(), language=body.get("language"), duration=body.get("duration"))


class EmbeddingClient:
    def __init__(self, base_url: str, timeout_s: float) -> None:
        self._http = httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(timeout_s, connect=2.0))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def embed(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for i in range(0, len(texts), EMBED_BATCH):
            batch = texts[i : i + EMBED_BATCH]
            try:
                response = await self._http.post(
                    "/embed", json={"inputs": batch, "normalize": True, "truncate": True}, headers=_headers()
                )
            except httpx.HTTPError as exc:
                raise InferenceUnavailable(f"embedding server unreachable: {type(exc).__name__}") from exc
            _raise_for(response, "embedding server")
            vectors = response.json()
            if len(vectors) != len(batch) or any(len(v) != EMBED_DIMS for v in vectors):
                raise InferenceRejected(f"embedding server returned vectors of the wrong shape (want {EMBED_DIMS} dims)")
            out.extend(vectors)
        return out

    async def embed_one(self, text: str) -> list[float]:
        return (await self.embed([text]))[0]


class SharedNote(NamedTuple):
    """One grant from the friends service: ``owner_id`` shares note ``note_id`` with the
    caller, ``access`` ``view`` or ``edit``. Notes honours it only while ``owner_id`` really
    owns that note (a share of someone else's id grants nothing)."""

    owner_id: str
    note_id: str
    access: str


def _grant(item: dict[str, Any]) -> SharedNote | None:
    """A shared-with-me item as a note grant; the id in canonical UUID form (friends stores
    item ids as the sharer typed them, and notes compares them with its own ids)."""
    if item.get("item_type") != "note" or item.get("access") not in ("view", "edit"):
        return None
    try:
        return SharedNote(str(item["owner_id"]), str(uuid.UUID(str(item["item_id"]))), item["access"])
    except (KeyError, ValueError):
        return None


class FriendsClient:
    """Which notes friends share with the caller and how (``GET
    /internal/friends/{uid}/shared-with-me?item_type=note``, with the caller's identity).
    Friends unavailable → no shared notes (logged), never an error for the caller's own
    notes. Nothing is cached here (friends reads shares from its database on every call), so
    a revocation, an access change, an unfriending or a block counts from the next request."""

    def __init__(self, client: ServiceClient, max_items: int) -> None:
        self.client = client
        self.max_items = max_items

    async def aclose(self) -> None:
        await self.client.aclose()

    async def shared_notes(self, principal: Principal) -> list[SharedNote]:
        out: list[SharedNote] = []
        cursor: str | None = None
        try:
            while len(out) < self.max_items:
                params = {"item_type": "note", "limit": 200, **({"cursor": cursor} if cursor else {})}
                r = await self.client.call("GET", f"/internal/friends/{principal.uid}/shared-with-me", principal, params=params)
                body = r.json()
                out += [g for g in map(_grant, body.get("items", [])) if g is not None]
                cursor = body.get("next_cursor")
                if not cursor:
                    break
        except Problem as exc:
            log.warning("shared notes unavailable; own notes only", extra={"fields": {"error": exc.code}})
        return out[: self.max_items]
