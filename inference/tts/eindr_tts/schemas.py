"""OpenAI ``POST /v1/audio/speech`` request and the voice catalogue."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class SpeechRequest(BaseModel):
    input: str = Field(
        description="Text to speak (at most EINDR_TTS_MAX_INPUT_CHARS characters)"
    )
    model: str | None = Field(
        default=None,
        description="tts-1 / tts-1-hd (any engine) or an engine: piper, espeak, coqui",
    )
    voice: str | None = Field(
        default=None,
        description="A voice id from GET /v1/voices; OpenAI names map to the default voice",
    )
    language: str | None = Field(
        default=None,
        description="Eindr extension: pick the voice for this language (BCP 47)",
    )
    response_format: Literal["wav", "pcm", "mp3", "opus", "aac", "flac"] = "mp3"
    speed: float = Field(default=1.0, ge=0.25, le=4.0)
    instructions: str | None = Field(
        default=None, description="Accepted for OpenAI compatibility; ignored"
    )
    stream_format: Literal["audio"] = "audio"


class VoiceOut(BaseModel):
    id: str
    name: str
    engine: str
    language: str
    sample_rate: int


class VoicesResponse(BaseModel):
    voices: list[VoiceOut]
    by_language: dict[str, list[str]]
    default_voice: str
