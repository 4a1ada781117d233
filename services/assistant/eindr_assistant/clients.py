"""Typed calls to the inference servers (STT, intent, chat, TTS) and the domain services.

Inference servers speak public protocols without the internal token (their perimeter is
the network policy); domain services are called through ``eindr_common``'s ServiceClient,
which mints an internal token carrying the user's identity for each call.

Every call gets a deadline: the smaller of its own timeout and what is left of the
request's budget. A server that is down, overloaded (503) or too slow raises
``StageUnavailable`` naming the stage, which the pipeline turns into a 503 problem or a
text-only reply.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from eindr_common.errors import GatewayTimeout, Problem, ServiceUnavailable
from eindr_common.http_client import ServiceClient, UpstreamError
from eindr_common.identity import Principal

from .settings import AssistantSettings


class StageUnavailable(Exception):
    def __init__(self, stage: str, reason: str) -> None:
        super().__init__(f"{stage}: {reason}")
        self.stage = stage
        self.reason = reason


class BudgetExceeded(StageUnavailable):
    pass


class Deadline:
    """What is left of one request's time budget."""

    def __init__(self, budget_s: float) -> None:
        self.end = time.monotonic() + budget_s

    def left(self) -> float:
        return self.end - time.monotonic()

    def timeout(self, stage: str, own_s: float) -> float:
        left = self.left()
        if left <= 0.05:
            raise BudgetExceeded(stage, "the request's time budget is spent")
        return min(own_s, left)


@dataclass
class Transcript:
    text: str
    language: str
    language_probability: float
    duration: float
    no_speech: bool


@dataclass
class Classification:
    intent: str
    confidence: float
    alternatives: list[dict[str, Any]]


async def _post(http: httpx.AsyncClient, stage: str, path: str, timeout: float, **kw: Any) -> httpx.Response:
    try:
        response = await http.post(path, timeout=timeout, **kw)
    except httpx.TimeoutException as exc:
        raise StageUnavailable(stage, "timed out") from exc
    except httpx.TransportError as exc:
        raise StageUnavailable(stage, f"unreachable ({type(exc).__name__})") from exc
    if response.status_code in (429, 502, 503, 504):
        raise StageUnavailable(stage, f"answered {response.status_code}")
    return response


class Inference:
    """The four inference servers, one pooled HTTP client each."""

    def __init__(self, settings: AssistantSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=16)
        mk = lambda url: httpx.AsyncClient(base_url=url, limits=limits, transport=transport, timeout=10.0)
        self.stt = mk(settings.stt_url)
        self.intent = mk(settings.intent_url)
        self.chat = mk(settings.chat_url)
        self.tts = mk(settings.tts_url)

    async def aclose(self) -> None:
        await asyncio.gather(self.stt.aclose(), self.intent.aclose(), self.chat.aclose(), self.tts.aclose())

    async def transcribe(self, audio: bytes, filename: str, content_type: str, *, language: str | None,
                         translate: bool, deadline: Deadline) -> Transcript:
        stage = "translate" if translate else "stt"
        timeout = deadline.timeout(stage, self.settings.assistant_stt_timeout_s)
        data = {"response_format": "verbose_json", "temperature": "0"}
        if language and not translate:
            data["language"] = language
        path = "/v1/audio/translations" if translate else "/v1/audio/transcriptions"
        response = await _post(self.stt, stage, path, timeout, files={"file": (filename, audio, content_type)}, data=data)
        if response.status_code == 400:
            body = _json(response)
            raise Problem(body.get("detail") or "The audio could not be read", status=400,
                          code=body.get("code") or "invalid_audio")
        if response.status_code == 413:
            body = _json(response)
            raise Problem(body.get("detail") or "The audio is too long", status=413, code=body.get("code") or "audio_too_large")
        if response.status_code >= 400:
            raise StageUnavailable(stage, f"answered {response.status_code}")
        body = response.json()
        segments = body.get("segments") or []
        text = (body.get("text") or "").strip()
        no_speech = not text or (bool(segments) and all(s.get("no_speech_prob", 0) > 0.8 for s in segments))
        return Transcript(
            text=text,
            language=body.get("language") or language or "en",
            language_probability=float(body.get("language_probability") or 1.0),
            duration=float(body.get("duration") or 0.0),
            no_speech=no_speech,
        )

    async def classify(self, text: str, deadline: Deadline) -> Classification:
        timeout = deadline.timeout("intent", self.settings.assistant_intent_timeout_s)
        response = await _post(self.intent, "intent", "/classify", timeout, json={"text": text[:4000], "top_k": 3})
        if response.status_code >= 400:
            raise StageUnavailable("intent", f"answered {response.status_code}")
        body = response.json()
        return Classification(body["intent"], float(body["confidence"]), list(body.get("alternatives") or []))

    async def small_talk(self, prompt: str, deadline: Deadline) -> str:
        timeout = deadline.timeout("chat", self.settings.assistant_chat_timeout_s)
        payload = {
            "inputs": prompt,
            "parameters": {
                "max_new_tokens": self.settings.assistant_chat_max_new_tokens,
                "do_sample": False,
                "repetition_penalty": 1.2,
                "stop": ["\n", "User:"],
                "return_full_text": False,
            },
        }
        response = await _post(self.chat, "chat", "/generate", timeout, json=payload)
        if response.status_code >= 400:
            raise StageUnavailable("chat", f"answered {response.status_code}")
        return str(response.json().get("generated_text") or "")

    def speech_request(self, text: str, voice: str | None, language: str) -> dict[str, Any]:
        body: dict[str, Any] = {"model": "tts-1", "input": text, "response_format": "wav", "language": language}
        body["voice"] = voice or "alloy"
        return body

    async def speak(self, text: str, voice: str | None, language: str, deadline: Deadline) -> bytes:
        timeout = deadline.timeout("tts", self.settings.assistant_tts_timeout_s)
        response = await _post(self.tts, "tts", "/v1/audio/speech", timeout, json=self.speech_request(text, voice, language))
        if response.status_code >= 400:
            raise StageUnavailable("tts", f"answered {response.status_code}")
        return response.content

    async def speak_stream(self, text: str, voice: str | None, language: str, deadline: Deadline) -> tuple[AsyncIterator[bytes], bytes]:
        """Open a streamed synthesis; returns (rest of the stream, first chunk). Raises before
        any byte is promised to the client when TTS is down."""
        timeout = deadline.timeout("tts", self.settings.assistant_tts_timeout_s)
        body = self.speech_request(text, voice, language) | {"stream": True}
        request = self.tts.build_request("POST", "/v1/audio/speech", json=body, timeout=timeout)
        try:
            response = await self.tts.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise StageUnavailable("tts", "timed out") from exc
        except httpx.TransportError as exc:
            raise StageUnavailable("tts", f"unreachable ({type(exc).__name__})") from exc
        if response.status_code >= 400:
            await response.aclose()
            raise StageUnavailable("tts", f"answered {response.status_code}")
        chunks = response.aiter_raw()
        try:
            first = await asyncio.wait_for(chunks.__anext__(), timeout)
        except (TimeoutError, StopAsyncIteration, httpx.HTTPError) as exc:
            await response.aclose()
            raise StageUnavailable("tts", "no audio") from exc

        async def rest() -> AsyncIterator[bytes]:
            try:
                async for chunk in chunks:
                    yield chunk
            finally:
                await response.aclose()

        return rest(), first


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
        return body if isinstance(body, dict) else {}
    except ValueError:
        return {}


class DomainUnavailable(Exception):
    def __init__(self, service: str, reason: str) -> None:
        super().__init__(f"{service}: {reason}")
        self.service = service
        self.reason = reason


class DomainRejected(Exception):
    def __init__(self, service: str, status: int, code: str, detail: str) -> None:
        super().__init__(f"{service}: {status} {code}")
        self.service, self.status, self.code, self.detail = service, status, code, detail


class Domain:
    """Typed calls to the domain services, acting as the user (internal token per call)."""

    SERVICES = ("users", "reminders", "notes", "ledger", "friends", "calendar", "history")

    def __init__(self, settings: AssistantSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self.clients: dict[str, ServiceClient] = {}
        for name in self.SERVICES:
            url = getattr(settings, f"{name}_url")
            if url:
                self.clients[name] = ServiceClient(
                    url, name, settings.internal_token_secret,
                    connect_timeout_s=min(1.0, settings.upstream_connect_timeout_s),
                    read_timeout_s=settings.assistant_domain_timeout_s,
                    attempts=2,
                    transport=transport,
                )

    def available(self, service: str) -> bool:
        return service in self.clients

    async def aclose(self) -> None:
        await asyncio.gather(*(c.aclose() for c in self.clients.values()))

    async def call(self, service: str, method: str, path: str, principal: Principal, deadline: Deadline, *,
                   json: Any = None, params: dict[str, Any] | None = None, idempotency_key: str | None = None) -> Any:
        client = self.clients.get(service)
        if client is None:
            raise DomainUnavailable(service, "not configured")
        headers = {"idempotency-key": idempotency_key} if idempotency_key else None
        try:
            timeout = deadline.timeout("action", self.settings.assistant_domain_timeout_s)
        except BudgetExceeded as exc:
            raise DomainUnavailable(service, "time budget spent") from exc
        try:
            async with asyncio.timeout(timeout):
                response = await client.call(method, path, principal, json=json, params=params, headers=headers)
        except TimeoutError as exc:
            raise DomainUnavailable(service, "timed out") from exc
        except (ServiceUnavailable, GatewayTimeout) as exc:
            raise DomainUnavailable(service, exc.detail or exc.code) from exc
        except UpstreamError as exc:
            if exc.status in (404, 405) and exc.code in ("not_found", "method_not_allowed") and "/v1/" in path and exc.detail and "Not Found" in exc.detail:
                raise DomainUnavailable(service, "endpoint missing") from exc
            if exc.status >= 500:
                raise DomainUnavailable(service, f"answered {exc.status}") from exc
            raise DomainRejected(service, exc.status, exc.code, exc.detail or "") from exc
        if response.status_code == 204 or not response.content:
            return None
        return response.json()
