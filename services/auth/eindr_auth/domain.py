"""Pure rules of the auth service: what device fields may contain. No I/O here."""

from __future__ import annotations

import re
import unicodedata
import zoneinfo
from functools import lru_cache

PLATFORMS = ("ios", "android", "web")
MAX_DEVICE_ID = 128
MAX_PUSH_TOKEN = 4096
MAX_APP_VERSION = 64
MAX_LOCALE = 35

# Device locales arrive as BCP 47 ("pt-BR") or POSIX-ish ("pt_BR"); both are stored as BCP 47.
_LOCALE = re.compile(r"^[A-Za-z]{2,8}([_-][A-Za-z0-9]{1,8})*$")
_NOT_USER_ZONES = frozenset({"localtime", "Factory", "posixrules"})


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as one line of text, or None (NUL bytes, control
    characters and lone surrogates are a 400, never a database error)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text (no lone surrogates)"
    for ch in value:
        if ch == "\x00":
            return "must not contain NUL bytes"
        if unicodedata.category(ch) == "Cc":
            return "must not contain control characters"
    return None


def normalize_locale(value: str) -> str | None:
    if not _LOCALE.match(value):
        return None
    return value.replace("_", "-")


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) - _NOT_USER_ZONES


def is_valid_timezone(name: str) -> bool:
    return name in _zones()


def is_valid_uid(uid: str) -> bool:
    """Firebase uids are 1 to 128 characters."""
    return 0 < len(uid) <= 128 and text_problem(uid) is None
