"""Request and response models of the history API (the public contract). Text in
responses follows the neutralisation rule (``domain.neutralise``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Outcome = Literal["success", "partial", "failed", "cancelled", "clarification"]


class InteractionCreate(BaseModel):
    """One voice interaction, appended by the assistant with the user's token."""

    model_config = ConfigDict(extra="forbid")
    transcript: str = Field(min_length=1, max_length=4000, description="What the user said (STT output)")
    language: str | None = Field(default=None, max_length=35, description="BCP 47")
    intent: str | None = Field(default=None, max_length=64)
    slots: dict[str, Any] = Field(default_factory=dict, description="For create_reminder: title, due_at or local_due + timezone, rrule")
    actions: list[dict[str, Any]] = Field(default_factory=list, max_length=50)
    reply: str | None = Field(default=None, max_length=4000)
    latency_ms: dict[str, float] = Field(default_factory=dict, description="Per stage: stt, intent, action, reply, tts, total")
    outcome: Outcome
    occurred_at: AwareDatetime | None = Field(default=None, description="Default: now; at most 365 days in the past")


class Interaction(BaseModel):
    id: UUID
    occurred_at: datetime
    transcript: str
    language: str | None
    intent: str | None
    slots: dict[str, Any]
    actions: list[Any]
    reply: str | None
    latency_ms: dict[str, Any]
    outcome: Outcome
    indexed: bool
    created_at: datetime


class InteractionPage(BaseModel):
    items: list[Interaction]
    next_cursor: str | None = None


class SearchHit(BaseModel):
    interaction: Interaction
    score: float
    semantic_rank: int | None
    fulltext_rank: int | None
    similarity: float | None


class SearchResult(BaseModel):
    items: list[SearchHit]
    mode: Literal["hybrid", "fulltext"]


class Deleted(BaseModel):
    deleted: int


class Suggestion(BaseModel):
    id: UUID
    title: str
    text: str = Field(description="The question to show the user")
    rrule: str
    weekday: int = Field(description="0 = Monday")
    time: str = Field(description="HH:MM, local")
    timezone: str | None
    occurrences: int
    status: Literal["pending", "accepted", "dismissed"]
    reminder_id: str | None
    created_at: datetime
    decided_at: datetime | None


class SuggestionList(BaseModel):
    items: list[Suggestion]
