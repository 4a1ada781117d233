"""The pure rules of the users service (no I/O)."""

from __future__ import annotations

from datetime import time

import pytest

from eindr_users import domain


@pytest.mark.parametrize(
    "tag,ok",
    [
        ("en", True),
        ("en-US", True),
        ("sr-Latn-RS", True),
        ("de-CH-1996", True),
        ("en_US", False),
        ("english", False),
        ("xx-yy", False),
        ("", False),
        ("en-", False),
        ("a" * 36, False),
    ],
)
def test_language_tags(tag, ok):
    assert domain.is_valid_language(tag) is ok


def test_language_is_canonicalised():
    assert domain.normalize_language("EN-us") == "en-US"
    assert domain.normalize_language("zh-hant-tw") == "zh-Hant-TW"


@pytest.mark.parametrize(
    "hint,expected", [("pt_BR", "pt-BR"), ("en-us", "en-US"), ("nonsense!", "en"), (None, "en"), ("", "en")]
)
def test_initial_language_from_device_locale(hint, expected):
    assert domain.initial_language(hint) == expected


@pytest.mark.parametrize(
    "zone,ok",
    [
        ("UTC", True),
        ("Europe/Amsterdam", True),
        ("America/Argentina/Buenos_Aires", True),
        ("localtime", False),
        ("Factory", False),
        ("europe/amsterdam", False),
        ("../etc", False),
    ],
)
def test_timezones(zone, ok):
    assert domain.is_valid_timezone(zone) is ok
    assert domain.initial_timezone(zone) == (zone if ok else "UTC")


@pytest.mark.parametrize(
    "value,expected",
    [
        ("00:00", time(0, 0)),
        ("23:59", time(23, 59)),
        ("24:00", None),
        ("9:00", None),
        ("09:60", None),
        ("0900", None),
        ("09:00:00", None),
    ],
)
def test_hhmm(value, expected):
    assert domain.parse_hhmm(value) == expected


@pytest.mark.parametrize(
    "value,problem", [("fine", None), ("new\nline", "control"), ("nul\x00", "NUL"), ("\ud800", "surrogate")]
)
def test_text_problem(value, problem):
    found = domain.text_problem(value)
    assert (found is None) if problem is None else (problem in found)


def test_profile_from_claims_shortens_names_but_drops_overlong_contact_fields():
    fields = domain.profile_from_claims(
        {"name": "n" * 150, "email": "e" * 321, "phone_number": "+31 6 1234", "picture": "https://x/" + "p" * 3000}
    )
    assert fields == {"display_name": "n" * 100, "avatar_url": None, "email": None, "phone": "+31 6 1234"}
    assert domain.profile_from_claims({}) == {"display_name": None, "avatar_url": None, "email": None, "phone": None}
