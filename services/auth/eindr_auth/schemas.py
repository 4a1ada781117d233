"""The public contract of the auth service: request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

from . import domain


def _text(value: str) -> str:
    problem = domain.text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _locale(value: str) -> str:
    _text(value)
    normalized = domain.normalize_locale(value)
    if normalized is None:
        raise ValueError("must be a locale such as 'en-US' or 'en_US'")
    return normalized


def _timezone(value: str) -> str:
    _text(value)
    if not domain.is_valid_timezone(value):
        raise ValueError("must be an IANA time zone name, e.g. 'Europe/Amsterdam'")
    return value


def _uid(value: str) -> str:
    _text(value)
    return value


def _line(max_length: int):
    return Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length), AfterValidator(_text)
    ]


Platform = Literal["ios", "android", "web"]


class DeviceIn(BaseModel):
    """The app installation signing in. Fields left out keep their stored value; ``null``
    clears ``push_token`` (e.g. notifications switched off)."""

    model_config = ConfigDict(extra="forbid")

    device_id: _line(domain.MAX_DEVICE_ID)
    platform: Platform
    push_token: _line(domain.MAX_PUSH_TOKEN) | None = None
    app_version: _line(domain.MAX_APP_VERSION) | None = None
    locale: (
        Annotated[
            str,
            StringConstraints(strip_whitespace=True, min_length=2, max_length=domain.MAX_LOCALE),
            AfterValidator(_locale),
        ]
        | None
    ) = None
    timezone: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), AfterValidator(_timezone)]
        | None
    ) = None


class SessionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device: DeviceIn


class Device(BaseModel):
    id: UUID
    device_id: str
    platform: Platform
    push_token: str | None
    app_version: str | None
    locale: str | None
    timezone: str | None
    last_seen_at: datetime


class UserProfile(BaseModel):
    """The users service's profile, passed through."""

    id: str
    display_name: str | None
    avatar_url: str | None
    email: str | None
    phone: str | None
    plan: Literal["free", "premium"]
    created_at: datetime
    updated_at: datetime


class SessionResponse(BaseModel):
    user: UserProfile
    plan: Literal["free", "premium"]
    features: dict[str, bool]
    device: Device


class DeviceList(BaseModel):
    items: list[Device]


class RevokeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uid: Annotated[str, StringConstraints(min_length=1, max_length=128), AfterValidator(_uid)]


class RevokeResult(BaseModel):
    uid: str
    revoked_at: datetime
