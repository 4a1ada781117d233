"""The pure rules of the auth service (no I/O)."""

from __future__ import annotations

import pytest

from eindr_auth import domain


@pytest.mark.parametrize(
    "value,expected",
    [
        ("en-US", "en-US"),
        ("en_US", "en-US"),
        ("pt_BR", "pt-BR"),
        ("zh-Hant-TW", "zh-Hant-TW"),
        ("nl", "nl"),
        ("not a locale", None),
        ("e", None),
        ("en--US", None),
        ("12-US", None),
        ("en-US!", None),
    ],
)
def test_device_locale(value, expected):
    assert domain.normalize_locale(value) == expected


@pytest.mark.parametrize(
    "uid,ok",
    [
        ("abc", True),
        ("u" * 128, True),
        ("", False),
        ("u" * 129, False),
        ("a\x00b", False),
        ("a\nb", False),
        ("\ud800", False),
    ],
)
def test_uid(uid, ok):
    assert domain.is_valid_uid(uid) is ok


def test_timezone():
    assert domain.is_valid_timezone("Asia/Kolkata")
    assert not domain.is_valid_timezone("localtime") and not domain.is_valid_timezone("Asia/kolkata")
