"""The public contract of the calendar API (request and response bodies)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL bytes")
    return value


def _http_url(value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError("must be an http(s) URL of a CalDAV server")
    return value


SafeStr = Annotated[str, AfterValidator(_no_nul)]
ServerUrl = Annotated[str, StringConstraints(min_length=8, max_length=2000), AfterValidator(_no_nul), AfterValidator(_http_url)]
Username = Annotated[str, StringConstraints(min_length=1, max_length=320), AfterValidator(_no_nul)]
Password = Annotated[str, StringConstraints(min_length=1, max_length=1024), AfterValidator(_no_nul)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_no_nul)]
ImportMode = Literal["alarms", "all", "none"]
PollInterval = Annotated[int, Field(ge=60, le=86400, description="Seconds between polls of this connection")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CalDAVConnect(_Strict):
    server_url: ServerUrl = Field(description="CalDAV server URL, e.g. https://caldav.icloud.com/")
    username: Username
    password: Password = Field(description="An app-specific password for iCloud")
    display_name: Name | None = None
    import_mode: ImportMode = Field("alarms", description="Which events become reminders: those with an alarm, all, or none")
    poll_interval_s: PollInterval | None = None


class GoogleConnectStarted(BaseModel):
    authorization_url: str
    state: str
    expires_in: int


class GoogleCallback(_Strict):
    code: Annotated[str, StringConstraints(min_length=1, max_length=2048), AfterValidator(_no_nul)]
    state: Annotated[str, StringConstraints(min_length=1, max_length=256), AfterValidator(_no_nul)]
    import_mode: ImportMode = "alarms"
    poll_interval_s: PollInterval | None = None


class ConnectionPatch(_Strict):
    display_name: Name | None = None
    import_mode: ImportMode | None = None
    poll_interval_s: PollInterval | None = None
    password: Password | None = Field(None, description="CalDAV only: a new password (re-verified, re-activates a failed connection)")


class CalendarPatch(_Strict):
    sync_enabled: bool | None = None
    is_target: bool | None = Field(None, description="true: Eindr writes reminders into this calendar (one per connection)")


class CalendarOut(BaseModel):
    id: uuid.UUID
    remote_id: str
    name: str | None
    sync_enabled: bool
    is_target: bool
    push_channel_expires_at: datetime | None


class ConnectionOut(BaseModel):
    id: uuid.UUID
    provider: Literal["google", "caldav"]
    status: Literal["active", "needs_reauth", "failed"]
    display_name: str | None
    server_url: str | None
    username: str | None
    import_mode: ImportMode
    poll_interval_s: int
    next_sync_at: datetime
    last_sync_at: datetime | None
    last_error: str | None
    failures: int
    calendars_checked_at: datetime | None = Field(
        None, description="When the account's calendar list was last read (null: it is read again on the next run)")
    created_at: datetime
    updated_at: datetime
    calendars: list[CalendarOut] = []


class ConnectionPage(BaseModel):
    items: list[ConnectionOut]
    next_cursor: str | None = None


class RunOut(BaseModel):
    id: uuid.UUID
    connection_id: uuid.UUID
    trigger: str
    started_at: datetime
    finished_at: datetime | None
    status: Literal["running", "succeeded", "partial", "failed"]
    changes_in: int
    changes_out: int
    requests: int
    full_resync: bool
    errors: list[dict[str, Any]]


class RunPage(BaseModel):
    items: list[RunOut]
    next_cursor: str | None = None


class ConflictOut(BaseModel):
    id: uuid.UUID
    connection_id: uuid.UUID | None
    reminder_id: uuid.UUID
    remote_uid: str
    kind: Literal["edit", "delete_vs_edit"] = Field(
        "edit", description='edit: both sides edited; delete_vs_edit: one side deleted, the other edited (the deleted side\'s '
                            'version is {"deleted": true, ...}; the edit wins)')
    winner: Literal["eindr", "remote"]
    eindr_version: dict[str, Any]
    remote_version: dict[str, Any]
    eindr_modified_at: datetime | None
    remote_modified_at: datetime | None
    created_at: datetime


class ConflictPage(BaseModel):
    items: list[ConflictOut]
    next_cursor: str | None = None
