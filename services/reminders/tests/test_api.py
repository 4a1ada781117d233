"""The reminders API as a real process on real PostgreSQL and Redis."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from eindr_common.testing import new_uid

from eindr_reminders.domain import search_grams

from .conftest import headers_for


def iso(dt: datetime) -> str:
    return dt.isoformat()


def soon(minutes: float = 60) -> str:
    return iso(datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=minutes))


def count(api, h, **params) -> int:
    return len(api.get("/v1/reminders", params={"limit": 200, **params}, headers=h).json()["items"])


def test_create_get_list_patch_delete(api, alice, redis_url):
    r = api.post(
        "/v1/reminders",
        json={
            "title": "call mum",
            "due_at": soon(),
            "tags": ["family"],
            "phrase": "remind me to call mum",
            "source": "voice",
            "alarms": [0, "-10m"],
        },
        headers=alice,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "scheduled" and body["tz_mode"] == "fixed" and body["alarms"] == ["-10m", "0"]
    assert body["next_fire_at"] < body["due_at"]  # the -10m alarm fires first
    rid = body["id"]
    assert api.get(f"/v1/reminders/{rid}", headers=alice).json()["title"] == "call mum"
    listed = api.get("/v1/reminders", params={"tag": "family"}, headers=alice).json()
    assert [i["id"] for i in listed["items"]] == [rid]
    r = api.patch(f"/v1/reminders/{rid}", json={"title": "call mum and dad", "priority": "high"}, headers=alice)
    assert r.status_code == 200 and r.json()["title"] == "call mum and dad" and r.json()["priority"] == "high"
    new_due = soon(120)
    r = api.patch(f"/v1/reminders/{rid}", json={"due_at": new_due, "alarms": [0]}, headers=alice)
    assert r.status_code == 200 and r.json()["due_at"] == r.json()["next_fire_at"]
    assert datetime.fromisoformat(r.json()["due_at"]) == datetime.fromisoformat(new_due)
    assert api.delete(f"/v1/reminders/{rid}", headers=alice).status_code == 204
    assert api.get(f"/v1/reminders/{rid}", headers=alice).status_code == 404
    # Each change is a domain event on the reminders stream.
    import json

    import redis

    with redis.Redis.from_url(redis_url, decode_responses=True) as rds:
        types = [
            f["type"]
            for _, f in rds.xrange("eindr:events:reminders")
            if json.loads(f["payload"]).get("reminder_id") == rid
        ]
    assert types == ["reminder.created", "reminder.updated", "reminder.updated", "reminder.deleted"]


def test_another_users_reminder_is_404_everywhere(api, alice):
    rid = api.post("/v1/reminders", json={"title": "secret", "due_at": soon()}, headers=alice).json()["id"]
    bob = headers_for(new_uid())
    for method, path, body in [
        ("GET", f"/v1/reminders/{rid}", None),
        ("PATCH", f"/v1/reminders/{rid}", {"title": "mine"}),
        ("DELETE", f"/v1/reminders/{rid}", None),
        ("POST", f"/v1/reminders/{rid}/cancel", {}),
        ("POST", f"/v1/reminders/{rid}/snooze", {"minutes": 5}),
        ("POST", f"/v1/reminders/{rid}/complete", None),
        ("POST", f"/v1/reminders/{rid}/reopen", None),
        ("GET", f"/v1/reminders/{rid}/occurrences", None),
    ]:
        r = api.request(method, path, json=body, headers=bob)
        assert r.status_code == 404, (method, path, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    assert api.get("/v1/reminders", headers=bob).json()["items"] == []
    assert api.post("/v1/reminders:cancel", json={"ids": [rid]}, headers=bob).json() == {"cancelled": 0}
    assert api.get(f"/v1/reminders/{rid}", headers=alice).json()["title"] == "secret"


def test_unauthenticated_is_401(api):
    assert api.get("/v1/reminders").status_code == 401


PAST = iso(datetime.now(UTC) - timedelta(minutes=30))


@pytest.mark.parametrize(
    "body,field",
    [
        ({"title": "x", "due_at": soon(), "rrule": "FREQ=DAILY;BYHOUR=25"}, "rrule"),
        ({"title": "x", "due_at": soon(), "rrule": "not a rule"}, "rrule"),
        ({"title": "x", "due_at": soon(), "rrule": "FREQ=MONTHLY;BYMONTHDAY=32"}, "rrule"),
        ({"title": "x", "due_at": soon(), "rrule": "FREQ=DAILY;UNTIL=20200101T000000Z"}, "rrule"),
        ({"title": "x", "local_due": "2030-01-01T09:00:00", "timezone": "Mars/Base"}, "timezone"),
        ({"title": "x", "due_at": "2030-01-01T09:00:00"}, "due_at"),
        ({"title": "x", "due_at": PAST}, "due_at"),
        ({"title": "", "due_at": soon()}, "title"),
        ({"title": "   ", "due_at": soon()}, "title"),
        ({"title": "x" * 501, "due_at": soon()}, "title"),
        ({"title": "x", "due_at": soon(), "alarms": ["10m"]}, "alarms[0]"),
        ({"title": "x", "due_at": soon(), "alarms": [0, 5]}, "alarms[1]"),
        ({"title": "bad\u0000title", "due_at": soon()}, "title"),
        ({"title": "x", "notes": "n\u0000", "due_at": soon()}, "notes"),
        ({"title": "x", "due_at": soon(), "tags": ["a\u0000"]}, "tags[0]"),
        ({"title": "x"}, "due_at"),
        ({"title": "x", "due_at": soon(), "local_due": "2030-01-01T09:00:00"}, "local_due"),
        ({"title": "x", "due_at": soon(), "priority": "meh"}, "priority"),
        ({"title": "x", "due_at": soon(), "colour": "red"}, "colour"),
    ],
)
def test_bad_input_is_400_naming_the_field_and_stores_nothing(api, body, field):
    h = headers_for(new_uid())
    r = api.post("/v1/reminders", json=body, headers=h)
    assert r.status_code == 400, r.text
    problem = r.json()
    assert r.headers["content-type"] == "application/problem+json"
    assert problem["status"] == 400 and field in [e["field"] for e in problem["errors"]], problem
    assert count(api, h) == 0


def test_bulk_is_all_or_nothing_and_names_every_bad_item(api, alice):
    items = [{"title": f"r{i}", "due_at": soon(10 + i)} for i in range(10)]
    items[3]["rrule"] = "FREQ=NEVER"
    items[7]["title"] = ""
    r = api.post("/v1/reminders:bulk", json={"items": items}, headers=alice)
    assert r.status_code == 400
    fields = {e["field"] for e in r.json()["errors"]}
    assert fields == {"items[3].rrule", "items[7].title"}
    assert count(api, alice) == 0
    r = api.post("/v1/reminders:bulk", json={"items": [{"title": "x", "due_at": soon()}] * 1001}, headers=alice)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "items"
    assert count(api, alice) == 0


def test_bulk_idempotent_replay(api, alice):
    items = [{"title": f"r{i}", "due_at": soon(10 + i)} for i in range(50)]
    h = {**alice, "Idempotency-Key": "bulk-" + uuid.uuid4().hex}
    first = api.post("/v1/reminders:bulk", json={"items": items}, headers=h)
    assert first.status_code == 201 and len(first.json()["items"]) == 50
    again = api.post("/v1/reminders:bulk", json={"items": items}, headers=h)
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert count(api, alice) == 50
    other = api.post("/v1/reminders:bulk", json={"items": items[:5]}, headers=h)
    assert other.status_code == 409


def test_list_filters_and_cursor_pagination(api, alice):
    items = [
        {
            "title": f"{'buy milk' if i % 2 else 'gym'} {i}",
            "due_at": soon(10 + i),
            "tags": ["even" if i % 2 == 0 else "odd"],
        }
        for i in range(25)
    ]
    assert api.post("/v1/reminders:bulk", json={"items": items}, headers=alice).status_code == 201
    seen, cursor = [], None
    while True:
        params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        page = api.get("/v1/reminders", params=params, headers=alice).json()
        seen += [i["title"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [i["title"] for i in items]
    assert count(api, alice, tag="odd") == 12
    assert count(api, alice, q="MILK") == 12
    assert count(api, alice, q="%") == 0
    assert count(api, alice, due_from=soon(20), due_to=soon(25)) == 5
    r = api.get("/v1/reminders", params={"q": "a\u0000"}, headers=alice)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "q"
    assert api.get("/v1/reminders", params={"cursor": "garbage!"}, headers=alice).status_code == 400


def test_text_query_matches_substrings_of_title_notes_and_phrase_literally(api, alice):
    """``q`` is a case-insensitive substring of the title, the notes or the phrase, with no
    wildcards (the trigram index pre-selects; the ILIKE on each field decides)."""
    items = [
        {"title": "Buy MILK", "due_at": soon(10)},
        {"title": "call", "notes": "ask about the milkshake", "due_at": soon(11)},
        {"title": "x", "phrase": "remind me about milk tomorrow", "due_at": soon(12)},
        {"title": "abc", "notes": "def", "due_at": soon(13)},
        {"title": "a_c 100%", "due_at": soon(14)},
    ]
    ids = [i["id"] for i in api.post("/v1/reminders:bulk", json={"items": items}, headers=alice).json()["items"]]

    def found(q: str) -> list[str]:
        return [i["id"] for i in api.get("/v1/reminders", params={"q": q}, headers=alice).json()["items"]]

    assert found("milk") == ids[:3]
    assert found("ILK") == ids[:3]  # inside a word, any case
    assert found("milkshake") == [ids[1]]
    assert found("c\nd") == [] and found("abcdef") == []  # never across two fields
    assert found("a_c") == [ids[4]] and found("0%") == [ids[4]]  # _ and % are literal
    assert found("abc") == [ids[3]]
    assert found("BC") == [ids[3]]  # shorter than a trigram: still a substring match
    assert found("milk tea") == []
    r = api.post("/v1/reminders:cancel", json={"q": "MILK"}, headers=alice)
    assert r.json() == {"cancelled": 3}
    assert found("milk") == ids[:3] and count(api, alice, status="cancelled") == 3
    # Changed texts are found by their new words only.
    assert api.patch(f"/v1/reminders/{ids[3]}", json={"title": "Dentist"}, headers=alice).status_code == 200
    assert found("dentist") == [ids[3]] and found("abc") == [] and found("def") == [ids[3]]


def test_search_keys_computed_in_python_equal_the_migrations_sql_function(api, db):
    """The service writes keys computed by domain.search_grams; migration 0002 backfilled
    existing reminders with its SQL twin, reminders.search_grams. Both must agree."""
    samples = ["Buy MILK", "İstanbul \u212aelvin Ilık", "café ÜBER 😀 €5", "a\nb c", "ab", "", "x" * 60, "ΟΔΟΣ σ ς"]
    for text in samples:
        (in_sql,) = db.execute("SELECT reminders.search_grams(%s)", (text,)).fetchone()
        assert sorted(in_sql) == search_grams(text), text


def test_cancel_by_filter(api, alice):
    items = [{"title": f"task {i}", "due_at": soon(10 + i), "tags": ["work" if i < 6 else "home"]} for i in range(10)]
    created = api.post("/v1/reminders:bulk", json={"items": items}, headers=alice).json()["items"]
    assert api.post("/v1/reminders:cancel", json={}, headers=alice).status_code == 400
    assert api.post("/v1/reminders:cancel", json={"tag": "work"}, headers=alice).json() == {"cancelled": 6}
    assert api.post("/v1/reminders:cancel", json={"tag": "work"}, headers=alice).json() == {"cancelled": 0}
    assert api.post("/v1/reminders:cancel", json={"ids": [created[9]["id"]]}, headers=alice).json() == {"cancelled": 1}
    assert count(api, alice, status="cancelled") == 7
    assert count(api, alice, status="scheduled") == 3
    cancelled = api.get(f"/v1/reminders/{created[0]['id']}", headers=alice).json()
    assert cancelled["next_fire_at"] is None and cancelled["cancelled_at"]


def test_recurring_occurrences_and_cancel_next(api, alice):
    r = api.post(
        "/v1/reminders",
        json={
            "title": "standup",
            "local_due": "2026-01-05T09:00:00",
            "timezone": "America/New_York",
            "rrule": "FREQ=WEEKLY;BYDAY=MO,WE",
        },
        headers=alice,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["tz_mode"] == "zoned"
    rid = body["id"]
    occ = api.get(f"/v1/reminders/{rid}/occurrences", params={"limit": 4}, headers=alice).json()["items"]
    assert len(occ) == 4 and all(o["local"].endswith("T09:00:00") for o in occ)
    assert all(datetime.fromisoformat(o["local"]).weekday() in (0, 2) for o in occ)
    r = api.post(f"/v1/reminders/{rid}/cancel", json={"scope": "next"}, headers=alice)
    assert r.status_code == 200 and r.json()["status"] == "scheduled"
    after = api.get(f"/v1/reminders/{rid}/occurrences", params={"limit": 3}, headers=alice).json()["items"]
    assert after[0]["occurrence_at"] == occ[1]["occurrence_at"]
    r = api.post(f"/v1/reminders/{rid}/cancel", json={"scope": "series"}, headers=alice)
    assert r.json()["status"] == "cancelled" and r.json()["next_fire_at"] is None
    one = api.post("/v1/reminders", json={"title": "once", "due_at": soon()}, headers=alice).json()
    r = api.post(f"/v1/reminders/{one['id']}/cancel", json={"scope": "next"}, headers=alice)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "scope"


def test_occurrences_dst_wall_clock(api, alice):
    r = api.post(
        "/v1/reminders",
        json={
            "title": "pills",
            "local_due": "2030-03-08T08:00:00",
            "timezone": "America/New_York",
            "rrule": "FREQ=DAILY;COUNT=4",
        },
        headers=alice,
    )
    occ = api.get(f"/v1/reminders/{r.json()['id']}/occurrences", headers=alice).json()["items"]
    # 2030-03-10 is the spring-forward day in New York: 08:00 local is 13:00Z before, 12:00Z after.
    assert [o["occurrence_at"][11:16] for o in occ] == ["13:00", "13:00", "12:00", "12:00"]


def test_snooze_complete_reopen(api, alice):
    rid = api.post("/v1/reminders", json={"title": "stretch", "due_at": soon(30)}, headers=alice).json()["id"]
    r = api.post(f"/v1/reminders/{rid}/snooze", json={"minutes": 90}, headers=alice)
    assert r.status_code == 200, r.text
    fire = datetime.fromisoformat(r.json()["next_fire_at"])
    assert timedelta(minutes=89) < fire - datetime.now(UTC) <= timedelta(minutes=90)
    assert (
        api.post(f"/v1/reminders/{rid}/snooze", json={"minutes": 5, "duration": "5m"}, headers=alice).status_code == 400
    )
    assert (
        api.post(f"/v1/reminders/{rid}/snooze", json={"until": PAST}, headers=alice).json()["errors"][0]["field"]
        == "until"
    )
    r = api.post(f"/v1/reminders/{rid}/snooze", json={"duration": "PT15M"}, headers=alice)
    assert r.status_code == 200
    r = api.post(f"/v1/reminders/{rid}/complete", headers=alice)
    assert r.json()["status"] == "completed" and r.json()["next_fire_at"] is None
    assert api.post(f"/v1/reminders/{rid}/snooze", json={"minutes": 5}, headers=alice).status_code == 409
    r = api.post(f"/v1/reminders/{rid}/reopen", headers=alice)
    assert r.json()["status"] == "scheduled" and r.json()["completed_at"] is None


def test_patch_validation(api, alice):
    rid = api.post("/v1/reminders", json={"title": "t", "due_at": soon()}, headers=alice).json()["id"]
    for body, field in [
        ({"title": None}, "title"),
        ({"rrule": "FREQ=DAILY;INTERVAL=0"}, "rrule"),
        ({"timezone": "Nowhere/X"}, "timezone"),
        ({"due_at": PAST}, "due_at"),
        ({"alarms": ["+5m"]}, "alarms[0]"),
        ({"title": "a\u0000"}, "title"),
    ]:
        r = api.patch(f"/v1/reminders/{rid}", json=body, headers=alice)
        assert r.status_code == 400 and field in [e["field"] for e in r.json()["errors"]], (body, r.text)
    assert api.get(f"/v1/reminders/{rid}", headers=alice).json()["title"] == "t"
    assert api.get("/v1/reminders/not-a-uuid", headers=alice).status_code == 400


def test_floating_reminder_uses_default_zone_when_users_is_down(api, alice):
    r = api.post("/v1/reminders", json={"title": "floating", "local_due": "2030-05-01T08:00:00"}, headers=alice)
    assert r.status_code == 201, r.text
    assert r.json()["tz_mode"] == "floating" and r.json()["timezone"] == "UTC"
    assert r.json()["due_at"].startswith("2030-05-01T08:00:00")
