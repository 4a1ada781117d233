"""Request and response models of the notes API (the public contract).

Text fields in responses follow the neutralisation rule in ``domain.neutralise``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["pending", "transcribed", "failed", "ready"]
Access = Literal["owner", "edit", "view"]


class NoteCreate(BaseModel):
    """JSON body of a text-only note (multipart carries audio; see POST /v1/notes)."""

    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(default=None, description="Plain text, at most 20,000 characters")
    title: str | None = Field(default=None, description="At most 200 characters")
    tags: list[str] = Field(default_factory=list, description="At most 20 tags of at most 50 characters")
    language: str | None = Field(default=None, description="ISO 639-1 hint for transcription")


class NotePatch(BaseModel):
    """Only the fields sent change; ``null`` clears title or text."""

    model_config = ConfigDict(extra="forbid")
    title: str | None = None
    text: str | None = None
    tags: list[str] | None = None


class Audio(BaseModel):
    format: str
    bytes: int
    duration_s: float | None
    url: str = Field(description="Short-lived signed URL of the audio")
    url_expires_at: datetime


class Note(BaseModel):
    id: UUID
    title: str | None
    text: str | None
    transcript: str | None
    tags: list[str]
    status: Status
    failure_reason: str | None
    language: str | None
    indexed: bool = Field(description="True once the note has its embedding (found by meaning)")
    audio: Audio | None
    shared_by: str | None = Field(default=None, description="The friend (owner) who shares this note with you; null for your own")
    access: Access = Field(default="owner", description="owner: yours; edit: a friend's, you may change title/text/tags; view: a friend's, read-only")
    created_at: datetime
    updated_at: datetime


class NotePage(BaseModel):
    items: list[Note]
    next_cursor: str | None = None


class SearchHit(BaseModel):
    note: Note
    score: float = Field(description="Reciprocal-rank-fusion score")
    semantic_rank: int | None
    fulltext_rank: int | None
    similarity: float | None = Field(description="Cosine similarity of the query and the note, when ranked by meaning")


class SearchResult(BaseModel):
    items: list[SearchHit]
    mode: Literal["hybrid", "fulltext"] = Field(description="fulltext when the embedding server was unavailable")
