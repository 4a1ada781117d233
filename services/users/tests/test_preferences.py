"""Preferences: defaults, partial updates, validation (400 naming the field, never 500)
and the events other services listen to."""

from __future__ import annotations

import json

import pytest

PREFS = "/v1/users/me/preferences"


def test_defaults_and_patch_changes_only_fields_sent(users_svc, http, make_user):
    _, h = make_user()
    prefs = http.get(users_svc.url + PREFS, headers=h).json()
    assert prefs == {
        "language": "en",
        "timezone": "UTC",
        "voice": None,
        "quiet_hours": None,
        "default_lead_minutes": 0,
        "history_retention_days": 90,
        "notification_channels": ["push", "sse"],
    }
    r = http.patch(
        users_svc.url + PREFS,
        json={"quiet_hours": {"start": "22:30", "end": "07:00"}, "language": "zh-hant-tw"},
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert r.json() == {**prefs, "quiet_hours": {"start": "22:30", "end": "07:00"}, "language": "zh-Hant-TW"}
    r = http.patch(
        users_svc.url + PREFS, json={"default_lead_minutes": 15, "notification_channels": ["sse"]}, headers=h
    )
    assert r.json()["quiet_hours"] == {"start": "22:30", "end": "07:00"}
    assert r.json()["default_lead_minutes"] == 15 and r.json()["notification_channels"] == ["sse"]
    r = http.patch(
        users_svc.url + PREFS,
        json={"quiet_hours": None, "voice": "en_US-joe-medium", "history_retention_days": 30},
        headers=h,
    )
    assert r.json()["quiet_hours"] is None and r.json()["voice"] == "en_US-joe-medium"
    assert http.get(users_svc.url + PREFS, headers=h).json() == r.json()


def _assert_400(r, field: str) -> None:
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["code"] == "validation_error"
    assert field in {e["field"] for e in body["errors"]}, body["errors"]


@pytest.mark.parametrize(
    "tz", ["Mars/Olympus_Mons", "utc+2", "Europe/amsterdam", "../../etc/passwd", "/etc/localtime", "localtime", "", " "]
)
def test_bad_timezone_is_400_naming_the_field(users_svc, http, make_user, tz):
    _, h = make_user()
    _assert_400(http.patch(users_svc.url + PREFS, json={"timezone": tz}, headers=h), "timezone")


@pytest.mark.parametrize("tag", ["english", "en_US", "xx-yy-zz-1", "e", "en--US", "123", "a" * 36, "en-US!"])
def test_bad_language_tag_is_400_naming_the_field(users_svc, http, make_user, tag):
    _, h = make_user()
    _assert_400(http.patch(users_svc.url + PREFS, json={"language": tag}, headers=h), "language")


@pytest.mark.parametrize(
    "window,field",
    [
        ({"start": "24:00", "end": "07:00"}, "quiet_hours.start"),
        ({"start": "22:00", "end": "07:60"}, "quiet_hours.end"),
        ({"start": "7:00", "end": "08:00"}, "quiet_hours.start"),
        ({"start": "-1:00", "end": "08:00"}, "quiet_hours.start"),
        ({"start": "ab:cd", "end": "08:00"}, "quiet_hours.start"),
        ({"start": "22:00"}, "quiet_hours.end"),
        ({"start": "08:00", "end": "08:00"}, "quiet_hours"),
        ({"start": 2200, "end": "08:00"}, "quiet_hours.start"),
    ],
)
def test_quiet_hours_out_of_range_is_400_naming_the_field(users_svc, http, make_user, window, field):
    _, h = make_user()
    _assert_400(http.patch(users_svc.url + PREFS, json={"quiet_hours": window}, headers=h), field)


@pytest.mark.parametrize(
    "body,field",
    [
        ({"default_lead_minutes": -1}, "default_lead_minutes"),
        ({"default_lead_minutes": "10"}, "default_lead_minutes"),
        ({"default_lead_minutes": 10081}, "default_lead_minutes"),
        ({"history_retention_days": 0}, "history_retention_days"),
        ({"history_retention_days": 1.5}, "history_retention_days"),
        ({"notification_channels": ["email"]}, "notification_channels[0]"),
        ({"notification_channels": ["push", "push"]}, "notification_channels"),
        ({"language": None}, "language"),
        ({"timezone": None}, "timezone"),
        ({"notification_channels": None}, "notification_channels"),
        ({"voice": "has space"}, "voice"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_other_bad_preferences_are_400(users_svc, http, make_user, body, field):
    _, h = make_user()
    _assert_400(http.patch(users_svc.url + PREFS, json=body, headers=h), field)


NUL = "abc\x00def"
MEGABYTE = "x" * (1024 * 1024)


@pytest.mark.parametrize("value", [NUL, MEGABYTE], ids=["nul", "1mb"])
@pytest.mark.parametrize(
    "path,field",
    [
        (PREFS, "language"),
        (PREFS, "timezone"),
        (PREFS, "voice"),
        ("/v1/users/me", "display_name"),
        ("/v1/users/me", "avatar_url"),
    ],
)
def test_nul_bytes_and_megabyte_strings_are_400_never_500(users_svc, http, make_user, db, path, field, value):
    uid, h = make_user()
    _assert_400(http.patch(users_svc.url + path, json={field: value}, headers=h), field)
    # Nothing was written.
    assert (
        db.execute(
            "SELECT count(*) FROM users.audit_log WHERE subject = %s AND action <> 'user.provisioned'", (uid,)
        ).fetchone()[0]
        == 0
    )


@pytest.mark.parametrize(
    "raw", ['{"display_name": "\\ud800"}', '{"display_name": "a\\u0007b"}', '{"display_name": ', "\x00"]
)
def test_undecodable_text_and_broken_json_are_400(users_svc, http, make_user, raw):
    _, h = make_user()
    r = http.patch(
        users_svc.url + "/v1/users/me",
        content=raw.encode("utf-8", "surrogatepass"),
        headers={**h, "content-type": "application/json"},
    )
    assert r.status_code == 400, r.text
    assert r.json()["status"] == 400


def test_megabyte_nul_key_in_body_is_400(users_svc, http, make_user):
    _, h = make_user()
    r = http.patch(users_svc.url + PREFS, json={"\x00" * 1000: MEGABYTE}, headers=h)
    assert r.status_code == 400
    # Neither the megabyte value nor the 1000-NUL key is echoed back.
    assert len(r.content) < 10_000


def test_timezone_change_emits_events(users_svc, http, make_user, events_of, db):
    uid, h = make_user()
    r = http.patch(users_svc.url + PREFS, json={"timezone": "Europe/Amsterdam"}, headers=h)
    assert r.status_code == 200
    tz_events = events_of(uid, "user.timezone_changed")
    assert [e["payload"] for e in tz_events] == [
        {"uid": uid, "old_timezone": "UTC", "new_timezone": "Europe/Amsterdam"}
    ]
    changed = events_of(uid, "user.preferences_changed")
    assert len(changed) == 1 and changed[0]["payload"]["preferences"] == r.json()

    # Same value again: nothing changed, no new event.
    http.patch(users_svc.url + PREFS, json={"timezone": "Europe/Amsterdam"}, headers=h)
    assert len(events_of(uid, "user.timezone_changed")) == 1
    # Another field: preferences_changed only.
    http.patch(users_svc.url + PREFS, json={"voice": "v1"}, headers=h)
    assert len(events_of(uid, "user.timezone_changed")) == 1
    assert len(events_of(uid, "user.preferences_changed")) == 2
    audit = db.execute(
        "SELECT fields FROM users.audit_log WHERE subject = %s AND action = 'preferences.updated' ORDER BY id", (uid,)
    ).fetchall()
    assert [row[0] for row in audit] == [["timezone"], ["voice"]]
    assert db.execute("SELECT count(*) FROM users.outbox WHERE payload->>'uid' = %s", (uid,)).fetchone()[0] == 0


def test_event_payloads_are_json(users_svc, http, make_user, rds):
    uid, h = make_user()
    http.patch(users_svc.url + PREFS, json={"quiet_hours": {"start": "23:00", "end": "06:30"}}, headers=h)
    from eindr_common.events import stream_name

    last = rds.xrevrange(stream_name("users"), count=50)
    mine = [
        f for _, f in last if json.loads(f["payload"]).get("uid") == uid and f["type"] == "user.preferences_changed"
    ]
    assert json.loads(mine[0]["payload"])["preferences"]["quiet_hours"] == {"start": "23:00", "end": "06:30"}
