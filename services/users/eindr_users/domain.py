"""Pure rules of the users service: what a valid language tag, time zone, display text and
quiet-hours window are, the defaults of a new account, and how verified Firebase claims
map onto a profile. No I/O here."""

from __future__ import annotations

import re
import unicodedata
import zoneinfo
from datetime import time
from functools import lru_cache
from typing import Any

import langcodes

PLANS = ("free", "premium")
CHANNELS = ("push", "sse")

DEFAULT_LANGUAGE = "en"
DEFAULT_TIMEZONE = "UTC"
DEFAULT_LEAD_MINUTES = 0
DEFAULT_HISTORY_RETENTION_DAYS = 90

MAX_DISPLAY_NAME = 100
MAX_URL = 2048
MAX_EMAIL = 320
MAX_PHONE = 32
MAX_LANGUAGE_TAG = 35  # RFC 5646 §4.4.1: implementations must support at least 35 characters
MAX_TIMEZONE = 64

# BCP 47 tags use ASCII letters, digits and hyphens only. langcodes alone would also accept
# "en_US" (it normalises underscores); the API takes the standard form only.
_TAG_SHAPE = re.compile(r"^[A-Za-z0-9]{1,8}(-[A-Za-z0-9]{1,8})*$")
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
# Zone names that exist in the tz database but mean nothing portable.
_NOT_USER_ZONES = frozenset({"localtime", "Factory", "posixrules"})


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """Why ``value`` cannot be stored as text, or None. Postgres refuses NUL bytes and lone
    surrogates would fail UTF-8 encoding: both must be a 400, never a 500."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text (no lone surrogates)"
    for ch in value:
        if ch == "\x00":
            return "must not contain NUL bytes"
        if unicodedata.category(ch) == "Cc" and not (multiline and ch in "\n\t"):
            return "must not contain control characters"
    return None


def is_valid_uid(uid: str) -> bool:
    """Firebase uids are 1 to 128 characters of text."""
    return 0 < len(uid) <= 128 and text_problem(uid) is None


def is_valid_language(tag: str) -> bool:
    return bool(_TAG_SHAPE.match(tag)) and len(tag) <= MAX_LANGUAGE_TAG and langcodes.tag_is_valid(tag)


def normalize_language(tag: str) -> str:
    """Canonical form of a valid tag: 'EN-us' -> 'en-US', 'iw' -> 'he'."""
    return langcodes.standardize_tag(tag)


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) - _NOT_USER_ZONES


def is_valid_timezone(name: str) -> bool:
    return name in _zones()


def parse_hhmm(value: str) -> time | None:
    match = _HHMM.match(value)
    return time(int(match.group(1)), int(match.group(2))) if match else None


def format_hhmm(value: time) -> str:
    return value.strftime("%H:%M")


def _clean_claim(value: Any, max_len: int, *, truncate: bool = False) -> str | None:
    """A usable claim value, or None. Only a display name may be shortened; a cut
    email, phone number or URL would be wrong, so an over-long one is dropped."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or text_problem(value) is not None:
        return None
    if len(value) > max_len:
        return value[:max_len].rstrip() if truncate else None
    return value


def profile_from_claims(claims: dict[str, Any]) -> dict[str, str | None]:
    """Profile fields from the verified Firebase claims the gateway forwards (``ctx``)."""
    picture = _clean_claim(claims.get("picture"), MAX_URL)
    if picture is not None and not picture.lower().startswith(("https://", "http://")):
        picture = None
    return {
        "display_name": _clean_claim(claims.get("name"), MAX_DISPLAY_NAME, truncate=True),
        "avatar_url": picture,
        "email": _clean_claim(claims.get("email"), MAX_EMAIL),
        "phone": _clean_claim(claims.get("phone_number"), MAX_PHONE),
    }


def initial_language(hint: str | None) -> str:
    """A device locale ('en-US', 'en_US', 'pt-BR') seeds the language of a new account;
    anything unusable falls back to the default rather than failing a first login."""
    if hint:
        candidate = hint.strip().replace("_", "-")
        if is_valid_language(candidate):
            return normalize_language(candidate)
    return DEFAULT_LANGUAGE


def initial_timezone(hint: str | None) -> str:
    return hint if hint and is_valid_timezone(hint) else DEFAULT_TIMEZONE


def changed_fields(before: dict[str, Any], updates: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``updates`` that differs from ``before``."""
    return {k: v for k, v in updates.items() if before.get(k) != v}
