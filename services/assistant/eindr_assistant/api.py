"""HTTP routes of the assistant: parse, run a turn, respond (JSON, or streamed audio/wav)."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Annotated
from urllib.parse import quote

from eindr_common.errors import BadRequest, NotFound, PayloadTooLarge
from eindr_common.idempotency import IdempotencyKey
from eindr_common.identity import CurrentUser
from fastapi import APIRouter, File, Form, Path, Request, UploadFile
from fastapi.responses import JSONResponse, Response, StreamingResponse

from . import conversation, service
from .pipeline import Deps
from .schemas import (
    AssistantResponse,
    ConversationId,
    LanguageTag,
    TextRequest,
    ZoneName,
)

_PROBLEM = {"description": "Problem details (RFC 9457)", "content": {"application/problem+json": {}}}
_ERRORS = {400: _PROBLEM, 401: _PROBLEM, 409: _PROBLEM, 413: _PROBLEM, 503: _PROBLEM, 504: _PROBLEM}
_AUDIO = {"content": {"audio/wav": {}}, "description": "With `Accept: audio/wav`: the spoken reply, streamed sentence by sentence; "
          "the turn's data is in the X-Eindr-* headers"}

router = APIRouter(prefix="/v1/assistant", tags=["assistant"], responses=_ERRORS)


def _deps(request: Request) -> Deps:
    return request.app.state.deps


def _wants_audio(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "audio/wav" in accept or "audio/x-wav" in accept or "audio/*" in accept


async def _respond(request: Request, turn, started: float, idem, fingerprint: dict) -> Response:
    if _wants_audio(request):
        opened = await service.stream_speech(turn)
        if opened is not None:
            stream, first = opened
            body = service.response_body(turn, None, None, started)
            service.log_history(turn, body)

            async def audio():
                yield first
                async for chunk in stream:
                    yield chunk

            headers = {
                "x-eindr-interaction-id": turn.interaction_id,
                "x-eindr-conversation-id": turn.conversation_id,
                "x-eindr-intent": turn.intent or "",
                "x-eindr-awaiting-confirmation": str(turn.awaiting_confirmation).lower(),
                "x-eindr-transcript": quote(turn.text, safe=" "),
                "x-eindr-reply": quote(turn.reply, safe=" "),
                "x-eindr-actions": quote(json.dumps(body["actions"], separators=(",", ":"), default=str), safe=""),
                "x-eindr-timings": quote(json.dumps(body["timings_ms"], separators=(",", ":")), safe=""),
                "cache-control": "no-store",
            }
            return StreamingResponse(audio(), media_type="audio/wav", headers=headers)
        # TTS is down: the reply still goes out, as text.
        body = service.response_body(turn, None, "tts_unavailable", started)
        service.log_history(turn, body)
        return JSONResponse(body, headers={"x-eindr-audio": "unavailable"})

    async def produce() -> dict:
        audio_url, audio_error = await service.synthesize(turn)
        body = service.response_body(turn, audio_url, audio_error, started)
        service.log_history(turn, body)
        return body

    return await idem.run(fingerprint, produce, status_code=200)


@router.post("/text", response_model=AssistantResponse, responses={200: _AUDIO}, summary="One typed utterance → actions and a reply")
async def text_turn(body: TextRequest, request: Request, user: CurrentUser, idem: IdempotencyKey) -> Response:
    started = time.perf_counter()
    turn = await service.new_turn(_deps(request), user, conversation_id=body.conversation_id, language=body.language,
                                  timezone=body.timezone, idempotency_key=idem.key, source="text")
    _check_timezone(turn.timezone)
    turn.text = body.text.strip()
    turn = await service.run(turn)
    return await _respond(request, turn, started, idem, body.model_dump())


@router.post("/voice", response_model=AssistantResponse, responses={200: _AUDIO}, summary="One spoken utterance → actions and a spoken reply")
async def voice_turn(
    request: Request,
    user: CurrentUser,
    idem: IdempotencyKey,
    audio: Annotated[UploadFile, File(description="wav, mp3, ogg/opus, m4a, webm; at most 60 s")],
    conversation_id: Annotated[ConversationId | None, Form()] = None,
    language: Annotated[LanguageTag | None, Form(description="Overrides the preference; leave out to use it")] = None,
    timezone: Annotated[ZoneName | None, Form()] = None,
) -> Response:
    started = time.perf_counter()
    deps = _deps(request)
    limit = deps.settings.assistant_max_audio_bytes
    data = await audio.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"The audio is larger than {limit // (1024 * 1024)} MB", code="audio_too_large")
    if not data:
        raise BadRequest("The audio file is empty", code="empty_audio", errors=[{"field": "audio", "message": "empty file"}])
    turn = await service.new_turn(deps, user, conversation_id=conversation_id, language=language, timezone=timezone,
                                  idempotency_key=idem.key, source="voice")
    _check_timezone(turn.timezone)
    turn.audio = data
    turn.filename = audio.filename or "audio.wav"
    turn.content_type = audio.content_type or "application/octet-stream"
    turn = await service.run(turn)
    fingerprint = {"audio": hashlib.sha256(data).hexdigest(), "conversation_id": conversation_id, "language": language, "timezone": timezone}
    return await _respond(request, turn, started, idem, fingerprint)


@router.get("/audio/{interaction_id}", response_class=Response, responses={200: {"content": {"audio/wav": {}}}, 404: _PROBLEM},
            summary="The spoken reply of an interaction (kept for a few minutes)")
async def reply_audio(interaction_id: Annotated[str, Path(min_length=36, max_length=36)], request: Request, user: CurrentUser) -> Response:
    audio = await conversation.get_audio(_deps(request).redis_bin, user.uid, interaction_id)
    if audio is None:
        raise NotFound("No reply audio with this id (it may have expired)", code="audio_not_found")
    return Response(audio, media_type="audio/wav", headers={"cache-control": "private, max-age=300"})


def _check_timezone(zone: str) -> None:
    from zoneinfo import ZoneInfo

    try:
        ZoneInfo(zone)
    except (KeyError, ValueError, OSError) as exc:
        raise BadRequest(f"Unknown time zone {zone!r}", code="invalid_timezone",
                         errors=[{"field": "timezone", "message": "must be an IANA time zone name"}]) from exc
