"""The public contract of the reminders API (request and response bodies)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
)


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL bytes")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


SafeStr = Annotated[str, AfterValidator(_no_nul)]
Title = Annotated[
    str, StringConstraints(min_length=1, max_length=500), AfterValidator(_no_nul), AfterValidator(_not_blank)
]
Notes = Annotated[str, StringConstraints(max_length=10_000), AfterValidator(_no_nul)]
Phrase = Annotated[str, StringConstraints(max_length=2_000), AfterValidator(_no_nul)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=50, strip_whitespace=True), AfterValidator(_no_nul)]
ZoneName = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_no_nul)]
RRuleText = Annotated[str, StringConstraints(min_length=1, max_length=1_000), AfterValidator(_no_nul)]
Offset = int | Annotated[str, StringConstraints(min_length=1, max_length=32), AfterValidator(_no_nul)]

Priority = Literal["low", "normal", "high", "urgent"]
Source = Literal["voice", "text", "calendar", "friend"]
Status = Literal["scheduled", "fired", "completed", "cancelled"]

MAX_BULK = 1_000
MAX_JOB_ITEMS = 50_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReminderCreate(_Strict):
    title: Title
    notes: Notes | None = None
    due_at: AwareDatetime | None = Field(None, description="RFC 3339 with a UTC offset; a fixed instant")
    local_due: datetime | None = Field(
        None,
        description="Wall-clock date-time (no offset) in `timezone`, or in the user's timezone when omitted (floating)",
    )
    timezone: ZoneName | None = Field(None, description="IANA zone name; wall-clock recurrence follows its DST rules")
    rrule: RRuleText | None = Field(None, description="RFC 5545 RRULE, e.g. FREQ=WEEKLY;BYDAY=MO,WE")
    exdates: list[datetime] = Field(
        default_factory=list, max_length=200, description="Occurrences to skip (local wall clock, or with offset)"
    )
    alarms: list[Offset] | None = Field(
        None, max_length=10, description='Lead offsets: minutes (int) or durations: [0, "-10m", "-1d"]'
    )
    priority: Priority = "normal"
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    source: Source = "text"
    phrase: Phrase | None = Field(None, description="What the user said, kept beside the machine rule")


UserId = Annotated[
    str, StringConstraints(min_length=1, max_length=128), AfterValidator(_no_nul), AfterValidator(_not_blank)
]


class ReminderCreateFor(ReminderCreate):
    """``POST /v1/reminders`` only (bulk items cannot be for someone else)."""

    for_user_id: UserId | None = Field(
        None,
        description="Create the reminder for this friend (who granted you `trusted`): it is theirs, "
        "with source=friend and created_by you",
    )


class ReminderPatch(_Strict):
    title: Title | None = None
    notes: Notes | None = None
    due_at: AwareDatetime | None = None
    local_due: datetime | None = None
    timezone: ZoneName | None = None
    rrule: RRuleText | None = None
    exdates: list[datetime] | None = Field(None, max_length=200)
    alarms: list[Offset] | None = Field(None, max_length=10)
    priority: Priority | None = None
    tags: list[Tag] | None = Field(None, max_length=20)
    phrase: Phrase | None = None


class Reminder(BaseModel):
    id: uuid.UUID
    title: str
    notes: str | None
    phrase: str | None
    source: str
    priority: str
    tags: list[str]
    status: Status
    due_at: datetime = Field(description="The occurrence due next (the last one once the series is over)")
    local_due: datetime = Field(description="The anchor wall-clock date-time in `timezone`")
    timezone: str
    tz_mode: Literal["floating", "zoned", "fixed"]
    rrule: str | None
    exdates: list[datetime]
    alarms: list[str]
    next_fire_at: datetime | None
    held_for_quiet_hours: bool
    last_fired_at: datetime | None
    fired_count: int
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    cancelled_at: datetime | None
    access: Literal["owner", "edit", "view", "creator"] = Field(
        "owner",
        description="owner: yours; edit/view: a friend's, shared with you; creator: the answer to creating one for a friend",
    )
    shared_by: str | None = Field(None, description="The friend who shares this reminder with you")
    created_by: str | None = Field(None, description="The friend who created this reminder for its owner")
    refused_at: datetime | None = None


class ReminderPage(BaseModel):
    items: list[Reminder]
    next_cursor: str | None = None


class BulkCreate(_Strict):
    # Items are validated one by one by the service (each a ReminderCreate), so that a 400
    # lists the index and field of *every* bad item, schema and domain errors alike.
    items: list[dict[str, Any]] = Field(
        min_length=1, max_length=MAX_BULK, json_schema_extra={"items": {"$ref": "#/components/schemas/ReminderCreate"}}
    )


class BulkCreated(BaseModel):
    items: list[Reminder]


class BulkJobCreate(_Strict):
    items: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_JOB_ITEMS)


class ItemFailure(BaseModel):
    index: int
    field: str
    message: str


class Job(BaseModel):
    id: uuid.UUID
    kind: str
    status: Literal["queued", "running", "succeeded", "failed"]
    total: int
    processed: int
    succeeded: int
    failed: int
    failures: list[ItemFailure]
    created_at: datetime
    finished_at: datetime | None


class CancelBody(_Strict):
    scope: Literal["series", "next"] = Field(
        "series", description="series: the whole reminder; next: only its next occurrence"
    )


class CancelFilter(_Strict):
    ids: list[uuid.UUID] | None = Field(None, max_length=1_000)
    due_from: AwareDatetime | None = None
    due_to: AwareDatetime | None = None
    tag: Tag | None = None
    q: Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_no_nul)] | None = None


class Cancelled(BaseModel):
    cancelled: int


class SnoozeBody(_Strict):
    minutes: int | None = Field(None, ge=1, le=7 * 24 * 60)
    duration: Annotated[str, StringConstraints(min_length=1, max_length=32), AfterValidator(_no_nul)] | None = Field(
        None, description="e.g. 10m, 1h, PT15M"
    )
    until: AwareDatetime | None = None


class Occurrence(BaseModel):
    occurrence_at: datetime
    local: datetime


class Occurrences(BaseModel):
    items: list[Occurrence]


class Delivery(BaseModel):
    id: uuid.UUID
    seq: int
    reminder_id: uuid.UUID
    title: str
    priority: str
    occurrence_at: datetime
    offset: str
    fire_at: datetime
    delivered_at: datetime
    channels: dict[str, str]


class DeliveryPage(BaseModel):
    items: list[Delivery]
    next_cursor: str | None = None
