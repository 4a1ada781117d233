"""HTTP routes: OpenAI-compatible ``POST /v1/audio/speech`` (streamed by sentence) and
``GET /v1/voices``. No internal JWT on purpose: an OpenAI-compatible TTS engine can
replace this server; the network policy (only the assistant reaches port 8204) is its
perimeter."""

from __future__ import annotations

from collections.abc import AsyncIterator

from eindr_common.errors import BadRequest, PayloadTooLarge
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from .encoding import CONTENT_TYPES, PCM_RATE
from .engine import TTSEngine
from .engines import EngineError, split_sentences
from .schemas import SpeechRequest, VoiceOut, VoicesResponse

router = APIRouter(prefix="/v1", tags=["audio"])


def _engine(request: Request) -> TTSEngine:
    return request.app.state.engine


@router.post(
    "/audio/speech",
    response_class=StreamingResponse,
    responses={200: {"content": {"audio/mpeg": {}}}},
)
async def speech(body: SpeechRequest, request: Request) -> StreamingResponse:
    engine = _engine(request)
    limit = engine.settings.tts_max_input_chars
    if not body.input.strip() or not split_sentences(body.input):
        raise BadRequest(
            "`input` is empty: there is nothing to say.", code="empty_input"
        )
    if len(body.input) > limit:
        raise PayloadTooLarge(
            f"`input` has {len(body.input)} characters; at most {limit}.",
            code="input_too_long",
        )
    voice = engine.choose(body.voice, body.language, body.model)
    engine.admit()
    chunks = engine.stream(body.input, voice, body.speed, body.response_format)
    try:
        first = (
            await chunks.__anext__()
        )  # errors before any byte is sent become a problem
    except EngineError as exc:
        await chunks.aclose()
        raise BadRequest(
            f"The {voice.engine} engine could not speak this text: {exc}",
            code="synthesis_failed",
        ) from exc
    except BaseException:
        await chunks.aclose()
        raise

    async def body_iter() -> AsyncIterator[bytes]:
        yield first
        async for chunk in chunks:
            yield chunk

    rate = PCM_RATE if body.response_format == "pcm" else voice.sample_rate
    headers = {
        "X-Voice": voice.id,
        "X-Engine": voice.engine,
        "X-Sample-Rate": str(rate),
    }
    return StreamingResponse(
        body_iter(), media_type=CONTENT_TYPES[body.response_format], headers=headers
    )


@router.get("/voices", response_model=VoicesResponse)
async def voices(
    request: Request,
    language: str | None = Query(
        default=None, description="Filter by language, e.g. de or pt-BR"
    ),
) -> VoicesResponse:
    engine = _engine(request)
    items = list(engine.voices.values())
    if language:
        lang = language.replace("_", "-").lower()
        items = [
            v
            for v in items
            if v.language.lower() == lang or v.primary_language == lang.split("-")[0]
        ]
    by_lang: dict[str, list[str]] = {}
    for v in items:
        by_lang.setdefault(v.primary_language, []).append(v.id)
    return VoicesResponse(
        voices=[
            VoiceOut(
                id=v.id,
                name=v.name,
                engine=v.engine,
                language=v.language,
                sample_rate=v.sample_rate,
            )
            for v in items
        ],
        by_language=by_lang,
        default_voice=engine.settings.tts_default_voice,
    )


@router.get("/models")
async def models(request: Request) -> dict:
    engine = _engine(request)
    ids = list(engine.engines) + ["tts-1", "tts-1-hd"]
    return {
        "object": "list",
        "data": [{"id": i, "object": "model", "owned_by": "eindr"} for i in ids],
    }
