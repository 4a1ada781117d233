"""Response shapes of the OpenAI audio API (plus speaches' language_probability)."""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel


class ResponseFormat(str, Enum):
    json = "json"
    text = "text"
    verbose_json = "verbose_json"
    srt = "srt"
    vtt = "vtt"


class Granularity(str, Enum):
    word = "word"
    segment = "segment"


class TranscriptionJSON(BaseModel):
    text: str


class Segment(BaseModel):
    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float


class Word(BaseModel):
    word: str
    start: float
    end: float
    probability: float


class TranscriptionVerboseJSON(BaseModel):
    task: str
    language: str
    language_probability: float
    duration: float
    text: str
    segments: list[Segment] | None = None
    words: list[Word] | None = None
