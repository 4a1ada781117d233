"""The public contract of the assistant: request and response bodies."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints


def _clean(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL bytes")
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _conversation(value: str) -> str:
    if not value.replace("-", "").replace("_", "").isalnum():
        raise ValueError("letters, digits, '-' and '_' only")
    return value


ConversationId = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_conversation)]
LanguageTag = Annotated[str, StringConstraints(min_length=2, max_length=35, pattern=r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")]
ZoneName = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_clean)]


class TextRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, StringConstraints(min_length=1, max_length=2000), AfterValidator(_clean)]
    conversation_id: ConversationId | None = Field(None, description="Continue a conversation (answer a confirmation)")
    language: LanguageTag | None = Field(None, description="Overrides the language from the user's preferences")
    timezone: ZoneName | None = Field(None, description="Overrides the timezone from the user's preferences")


class Alternative(BaseModel):
    intent: str
    confidence: float


class IntentOut(BaseModel):
    name: str = Field(description="The intent acted on (or 'confirm'/'deny' answering a pending question)")
    confidence: float
    alternatives: list[Alternative] = Field(default_factory=list)
    accepted: bool = Field(description="False when the confidence was below the threshold and the assistant asked instead")


class Action(BaseModel):
    type: str = Field(description="e.g. reminder.create, reminder.cancel, ledger.add, note.create")
    service: str
    status: Literal["done", "pending_confirmation", "declined", "failed", "unavailable", "not_supported", "nothing_found"]
    resource: str | None = Field(None, description="Resource path of what was created or changed")
    id: str | None = None
    ids: list[str] = Field(default_factory=list)
    detail: str | None = None
    data: dict[str, Any] | None = None


class ReplyOut(BaseModel):
    text: str
    language: str
    audio_url: str | None = Field(None, description="GET it (with the same credentials) for audio/wav; null when TTS failed")
    audio_error: str | None = None


class AssistantResponse(BaseModel):
    interaction_id: str
    conversation_id: str
    transcript: str
    language: str
    classified_text: str | None = Field(None, description="English rendering used for classification, when it differs")
    intent: IntentOut | None
    slots: dict[str, Any]
    actions: list[Action]
    reply: ReplyOut
    awaiting_confirmation: bool
    timings_ms: dict[str, float] = Field(description="stt, translate, intent, slots, action, reply, tts, total")
