"""HTTP routes: OpenAI-compatible ``/v1/audio/transcriptions`` and ``/translations``.

No internal JWT here on purpose: inference servers speak the engines' public protocols
so speaches/OpenAI-compatible engines can replace them; the network policy (only the
assistant and notes services may reach port 8201) is their perimeter."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from eindr_common.errors import BadRequest, PayloadTooLarge
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import (
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from faster_whisper.tokenizer import _LANGUAGE_CODES

from .audio import decode_audio
from .engine import WhisperEngine
from .formats import to_srt, to_vtt
from .schemas import (
    Granularity,
    ResponseFormat,
    TranscriptionJSON,
    TranscriptionVerboseJSON,
)

router = APIRouter(prefix="/v1/audio", tags=["audio"])

MODEL_ALIASES = {"whisper-1"}


def _engine(request: Request) -> WhisperEngine:
    return request.app.state.engine


async def _read_upload(request: Request, file: UploadFile) -> bytes:
    limit = request.app.state.settings.stt_max_upload_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(
            f"The file is larger than the {limit // (1024 * 1024)} MB limit.",
            code="file_too_large",
        )
    return data


def _check_model(engine: WhisperEngine, model: str | None) -> None:
    if model and model not in MODEL_ALIASES | {engine.settings.stt_model_name}:
        raise BadRequest(
            f"Unknown model {model!r}; this server runs {engine.settings.stt_model_name!r} (alias 'whisper-1').",
            code="unknown_model",
        )


def _check_language(engine: WhisperEngine, language: str | None) -> str | None:
    if language is None or language == "":
        return None
    lang = language.strip().lower()
    if lang not in _LANGUAGE_CODES:
        raise BadRequest(
            f"Unknown language {language!r}: use an ISO 639-1 code such as 'en'.",
            code="unknown_language",
        )
    if not engine.multilingual and lang != "en":
        raise BadRequest("This model is English-only.", code="unsupported_language")
    return lang


def _render(
    fmt: ResponseFormat, task: str, result, granularities: set[Granularity]
) -> Response:
    if fmt is ResponseFormat.text:
        return PlainTextResponse(result.text + "\n")
    if fmt is ResponseFormat.srt:
        return PlainTextResponse(to_srt(result.segments))
    if fmt is ResponseFormat.vtt:
        return PlainTextResponse(to_vtt(result.segments), media_type="text/vtt")
    if fmt is ResponseFormat.verbose_json:
        body = TranscriptionVerboseJSON(
            task=task,
            language=result.language,
            language_probability=result.language_probability,
            duration=result.duration,
            text=result.text,
            segments=result.segments
            if (not granularities or Granularity.segment in granularities)
            else None,
            words=result.words if Granularity.word in granularities else None,
        )
        return JSONResponse(body.model_dump(exclude_none=True))
    return JSONResponse(TranscriptionJSON(text=result.text).model_dump())


def _sse(data: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


async def _handle(
    request: Request,
    *,
    task: str,
    file: UploadFile,
    model: str | None,
    language: str | None,
    prompt: str | None,
    response_format: ResponseFormat,
    temperature: float,
    granularities: list[Granularity] | None,
    stream: bool,
    vad_filter: bool | None,
) -> Response:
    engine = _engine(request)
    _check_model(engine, model)
    lang = _check_language(engine, language)
    grans = set(granularities or [])
    if Granularity.word in grans and response_format is not ResponseFormat.verbose_json:
        raise BadRequest(
            "timestamp_granularities[]=word needs response_format=verbose_json.",
            code="invalid_granularity",
        )
    data = await _read_upload(request, file)
    settings = engine.settings
    engine.gate.enter()
    released = False
    try:
        audio = await asyncio.to_thread(
            decode_audio, data, max_seconds=settings.stt_max_audio_seconds
        )
        kw = {
            "task": task,
            "language": lang,
            "prompt": prompt,
            "temperature": temperature,
            "words": Granularity.word in grans,
            "vad_filter": settings.stt_vad_filter if vad_filter is None else vad_filter,
        }
        if not stream:
            result = await engine.transcribe(audio, **kw)
            return _render(response_format, task, result, grans)

        async def events():
            try:
                parts: list[str] = []
                info = None
                async for kind, item in engine.stream(audio, **kw):
                    if kind == "info":
                        info = item
                    elif kind == "segment":
                        parts.append(item["text"])
                        yield _sse(
                            {
                                "type": "transcript.text.delta",
                                "delta": item["text"],
                                "segment": item,
                            }
                        )
                    else:
                        yield _sse(
                            {
                                "type": "error",
                                "error": {
                                    "code": "transcription_failed",
                                    "message": str(item),
                                },
                            }
                        )
                        return
                yield _sse(
                    {
                        "type": "transcript.text.done",
                        "text": "".join(parts).strip(),
                        "task": task,
                        "language": getattr(info, "language", lang),
                        "language_probability": round(
                            getattr(info, "language_probability", 1.0), 4
                        ),
                        "duration": round(getattr(info, "duration", 0.0), 3),
                    }
                )
            finally:
                engine.gate.leave()

        released = True  # the stream's generator releases the slot when it ends
        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )
    finally:
        if not released:
            engine.gate.leave()


FileField = Annotated[
    UploadFile, File(description="Audio: wav, mp3, ogg/opus, m4a, webm, flac")
]


@router.post(
    "/transcriptions", response_model=TranscriptionVerboseJSON | TranscriptionJSON
)
async def transcriptions(
    request: Request,
    file: FileField,
    model: Annotated[str | None, Form()] = None,
    language: Annotated[
        str | None, Form(description="ISO 639-1; detected when absent")
    ] = None,
    prompt: Annotated[str | None, Form(max_length=2000)] = None,
    response_format: Annotated[ResponseFormat, Form()] = ResponseFormat.json,
    temperature: Annotated[float, Form(ge=0.0, le=1.0)] = 0.0,
    timestamp_granularities: Annotated[
        list[Granularity] | None, Form(alias="timestamp_granularities[]")
    ] = None,
    stream: Annotated[bool, Form()] = False,
    vad_filter: Annotated[
        bool | None,
        Form(description="speaches extension; default from EINDR_STT_VAD_FILTER"),
    ] = None,
) -> Response:
    return await _handle(
        request,
        task="transcribe",
        file=file,
        model=model,
        language=language,
        prompt=prompt,
        response_format=response_format,
        temperature=temperature,
        granularities=timestamp_granularities,
        stream=stream,
        vad_filter=vad_filter,
    )


@router.post(
    "/translations", response_model=TranscriptionVerboseJSON | TranscriptionJSON
)
async def translations(
    request: Request,
    file: FileField,
    model: Annotated[str | None, Form()] = None,
    prompt: Annotated[str | None, Form(max_length=2000)] = None,
    response_format: Annotated[ResponseFormat, Form()] = ResponseFormat.json,
    temperature: Annotated[float, Form(ge=0.0, le=1.0)] = 0.0,
    stream: Annotated[bool, Form()] = False,
    vad_filter: Annotated[bool | None, Form()] = None,
) -> Response:
    """Speech in any language to English text."""
    return await _handle(
        request,
        task="translate",
        file=file,
        model=model,
        language=None,
        prompt=prompt,
        response_format=response_format,
        temperature=temperature,
        granularities=None,
        stream=stream,
        vad_filter=vad_filter,
    )


models_router = APIRouter(tags=["models"])


@models_router.get("/v1/models")
async def list_models(request: Request) -> dict[str, Any]:
    name = _engine(request).settings.stt_model_name
    return {
        "object": "list",
        "data": [
            {"id": m, "object": "model", "owned_by": "eindr"}
            for m in (name, "whisper-1")
        ],
    }
