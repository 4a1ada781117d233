"""The public contract of the users service: request and response bodies.

Every string is length-bounded and checked for NUL bytes, control characters and lone
surrogates here, so bad input is a 400 naming the field before anything reaches SQL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from . import domain


def _single_line(value: str) -> str:
    problem = domain.text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _http_url(value: str) -> str:
    _single_line(value)
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or any(ch.isspace() for ch in value):
        raise ValueError("must be an absolute http(s) URL")
    return value


def _language(value: str) -> str:
    _single_line(value)
    if not domain.is_valid_language(value):
        raise ValueError("must be a valid BCP 47 language tag, e.g. 'en', 'en-US', 'zh-Hant-TW'")
    return domain.normalize_language(value)


def _timezone(value: str) -> str:
    _single_line(value)
    if not domain.is_valid_timezone(value):
        raise ValueError("must be an IANA time zone name, e.g. 'Europe/Amsterdam'")
    return value


def _hhmm(value: str) -> str:
    if domain.parse_hhmm(value) is None:
        raise ValueError("must be a time of day as HH:MM, 00:00 to 23:59")
    return value


DisplayName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=domain.MAX_DISPLAY_NAME),
    AfterValidator(_single_line),
]
Url = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=domain.MAX_URL), AfterValidator(_http_url)
]
LanguageTag = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=domain.MAX_LANGUAGE_TAG),
    AfterValidator(_language),
]
TimeZoneName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=domain.MAX_TIMEZONE),
    AfterValidator(_timezone),
]
VoiceName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:+-]+$")
]
HHMM = Annotated[str, StringConstraints(min_length=5, max_length=5), AfterValidator(_hhmm)]
Channel = Literal["push", "sse"]


class Profile(BaseModel):
    id: str
    display_name: str | None
    avatar_url: str | None
    email: str | None
    phone: str | None
    plan: Literal["free", "premium"]
    created_at: datetime
    updated_at: datetime


class ProfilePatch(BaseModel):
    """Only the fields sent change; ``null`` clears a field."""

    model_config = ConfigDict(extra="forbid")

    display_name: DisplayName | None = None
    avatar_url: Url | None = None


class QuietHours(BaseModel):
    """A daily window (local time of the user's zone) without notifications; it may span
    midnight (22:00 to 07:00)."""

    model_config = ConfigDict(extra="forbid")

    start: HHMM
    end: HHMM

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end must differ")
        return self


class Preferences(BaseModel):
    language: str = Field(description="BCP 47 language tag")
    timezone: str = Field(description="IANA time zone name")
    voice: str | None
    quiet_hours: QuietHours | None
    default_lead_minutes: int
    history_retention_days: int
    notification_channels: list[Channel]


_NOT_NULLABLE = ("language", "timezone", "default_lead_minutes", "history_retention_days", "notification_channels")


class PreferencesPatch(BaseModel):
    """Only the fields sent change. ``voice`` and ``quiet_hours`` may be set to null."""

    model_config = ConfigDict(extra="forbid")

    language: LanguageTag | None = None
    timezone: TimeZoneName | None = None
    voice: VoiceName | None = None
    quiet_hours: QuietHours | None = None
    default_lead_minutes: int | None = Field(default=None, ge=0, le=10080, strict=True)
    history_retention_days: int | None = Field(default=None, ge=1, le=3650, strict=True)
    notification_channels: list[Channel] | None = Field(default=None, max_length=len(domain.CHANNELS))

    @field_validator(*_NOT_NULLABLE)
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may not be null")
        return value

    @field_validator("notification_channels")
    @classmethod
    def _unique(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("must not repeat a channel")
        return value


class PlanChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan: Literal["free", "premium"]


class PlanResult(BaseModel):
    id: str
    plan: Literal["free", "premium"]


class ProvisionHints(BaseModel):
    """Optional device hints that seed a *new* account's preferences. Unusable values are
    ignored (a first login never fails on an odd device locale)."""

    language: Annotated[str, StringConstraints(max_length=64)] | None = None
    timezone: Annotated[str, StringConstraints(max_length=64)] | None = None
