"""The history API, its worker and its consumers against the real processes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from eindr_common.testing import auth_headers, new_uid


def _append(client, api, headers, **body):
    body.setdefault("outcome", "success")
    r = client.post(api.url + "/v1/history", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def _count(db, uid: str) -> int:
    return db.execute("SELECT count(*) FROM history.interactions WHERE user_id = %s", (uid,)).fetchone()[0]


def test_append_get_list_filter_delete(client, history_api, user, rds):
    uid, h = user
    now = datetime.now(UTC)
    a = _append(client, history_api, h, transcript="remind me to call mum", intent="create_reminder", language="en",
                slots={"title": "call mum", "due_at": (now + timedelta(days=1)).isoformat()},
                actions=[{"type": "reminder.create", "id": "r1"}], reply="Okay, I'll remind you tomorrow.",
                latency_ms={"stt": 420.5, "intent": 12, "action": 30, "tts": 150, "total": 640}, occurred_at=(now - timedelta(hours=2)).isoformat())
    b = _append(client, history_api, h, transcript="what's the weather", intent="out_of_scope", outcome="failed", reply="Sorry")
    got = client.get(f"{history_api.url}/v1/history/{a['id']}", headers=h).json()
    assert got["slots"]["title"] == "call mum" and got["latency_ms"]["stt"] == 420.5 and got["actions"][0]["type"] == "reminder.create"
    items = client.get(history_api.url + "/v1/history", headers=h).json()["items"]
    assert [i["id"] for i in items] == [b["id"], a["id"]]
    assert [i["id"] for i in client.get(history_api.url + "/v1/history", params={"intent": "create_reminder"}, headers=h).json()["items"]] == [a["id"]]
    assert [i["id"] for i in client.get(history_api.url + "/v1/history", params={"outcome": "failed"}, headers=h).json()["items"]] == [b["id"]]
    since = (now - timedelta(hours=1)).isoformat()
    assert [i["id"] for i in client.get(history_api.url + "/v1/history", params={"from": since}, headers=h).json()["items"]] == [b["id"]]
    assert [i["id"] for i in client.get(history_api.url + "/v1/history", params={"to": since}, headers=h).json()["items"]] == [a["id"]]
    page = client.get(history_api.url + "/v1/history", params={"limit": 1}, headers=h).json()
    page2 = client.get(history_api.url + "/v1/history", params={"limit": 1, "cursor": page["next_cursor"]}, headers=h).json()
    assert [page["items"][0]["id"], page2["items"][0]["id"]] == [b["id"], a["id"]] and page2["next_cursor"] is None
    assert client.delete(f"{history_api.url}/v1/history/{a['id']}", headers=h).status_code == 204
    assert client.get(f"{history_api.url}/v1/history/{a['id']}", headers=h).status_code == 404
    assert client.delete(history_api.url + "/v1/history", headers=h).json() == {"deleted": 1}
    assert client.get(history_api.url + "/v1/history", headers=h).json()["items"] == []
    # Every write is on the audit stream (ids only, never the transcript).
    mine = [f for _, f in rds.xrange("eindr:audit") if f["service"] == "history" and f["actor_uid"] == uid]
    assert [f["action"] for f in mine] == ["history.appended", "history.appended", "history.deleted", "history.cleared"]
    assert all("call mum" not in f["details"] for f in mine)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"transcript": "a\x00b"}, "transcript"),
        ({"transcript": "x" * 1_000_000}, "transcript"),
        ({"transcript": "   "}, "transcript"),
        ({"transcript": "ok", "reply": "\x00"}, "reply"),
        ({"transcript": "ok", "slots": {"title": "nul\x00"}}, "slots"),
        ({"transcript": "ok", "slots": {"big": "x" * 20_000}}, "slots"),
        ({"transcript": "ok", "intent": "i" * 65}, "intent"),
        ({"transcript": "ok", "outcome": "maybe"}, "outcome"),
        ({"transcript": "ok", "occurred_at": "2999-01-01T00:00:00Z"}, "occurred_at"),
        ({"transcript": "ok", "occurred_at": "2020-01-01T00:00:00"}, "occurred_at"),
        ({"transcript": "ok", "latency_ms": {"stt": "fast"}}, "latency_ms.stt"),
        ({"transcript": "ok", "extra": 1}, "extra"),
    ],
)
def test_bad_input_is_400_naming_the_field_and_stores_nothing(client, history_api, user, db, body, field):
    uid, h = user
    body = {"outcome": "success", **body}
    r = client.post(history_api.url + "/v1/history", json=body, headers=h)
    assert r.status_code == 400, r.text
    assert field in {e["field"] for e in r.json()["errors"]}, r.json()
    assert len(r.text) < 5000
    assert _count(db, uid) == 0


def test_search_input_rules(client, history_api, user):
    _uid, h = user
    for q in ("", " ", "q" * 501, "a\x00"):
        r = client.get(history_api.url + "/v1/history/search", params={"q": q}, headers=h)
        assert r.status_code == 400 and r.json()["errors"][0]["field"] == "q"


def test_search_by_meaning_and_by_words(client, history_api, history_worker, user, poll):
    _uid, h = user
    ids = {}
    for key, transcript in {
        "ledger": "Ali owes me twenty dollars for the concert tickets",
        "weather": "Will it rain in Rotterdam tomorrow",
        "note": "Note that the spare car key is in the kitchen drawer",
        "code": "Remember gate code xq4417",
    }.items():
        ids[key] = _append(client, history_api, h, transcript=transcript)["id"]
    poll(lambda: client.get(history_api.url + "/v1/history", headers=h).json()["items"], lambda items: all(i["indexed"] for i in items))
    r = client.get(history_api.url + "/v1/history/search", params={"q": "who borrowed money from me"}, headers=h).json()
    assert r["mode"] == "hybrid" and r["items"][0]["interaction"]["id"] == ids["ledger"] and r["items"][0]["semantic_rank"] == 1
    r = client.get(history_api.url + "/v1/history/search", params={"q": "xq4417"}, headers=h).json()
    assert r["items"][0]["interaction"]["id"] == ids["code"] and r["items"][0]["fulltext_rank"] == 1


def test_another_users_history_is_invisible(client, history_api, history_worker, user, other_user, poll):
    (a, ha), (_b, hb) = user, other_user
    item = _append(client, history_api, ha, transcript="my bank pin is 9921 <script>x</script>")
    url = f"{history_api.url}/v1/history/{item['id']}"
    assert "<script>" not in client.get(url, headers=ha).json()["transcript"]
    poll(lambda: client.get(url, headers=ha).json(), lambda i: i["indexed"])
    assert client.get(url, headers=hb).status_code == 404
    assert client.delete(url, headers=hb).status_code == 404
    assert client.get(history_api.url + "/v1/history", headers=hb).json()["items"] == []
    assert client.get(history_api.url + "/v1/history/search", params={"q": "bank pin 9921"}, headers=hb).json()["items"] == []
    assert client.delete(history_api.url + "/v1/history", headers=hb).json() == {"deleted": 0}
    assert client.get(url, headers=ha).status_code == 200
    assert client.get(history_api.url + "/v1/history/search", params={"q": "bank pin 9921"}, headers=ha).json()["items"]
    assert client.get(history_api.url + "/v1/history", headers={}).status_code == 401
    assert client.get(history_api.url + "/v1/history", headers=auth_headers(a, "notes")).status_code == 401


def test_retention_job_with_a_shortened_clock(postgres_url, history_api, client, user, db):
    """The retention job run in-process against the real database with the clock moved
    forward: rows older than the user's retention go, the others stay."""
    from eindr_common.db import create_pool
    from eindr_history.settings import HistorySettings
    from eindr_history.worker import run_retention

    uid, h = user
    other = new_uid()
    old = _append(client, history_api, h, transcript="old one", occurred_at=(datetime.now(UTC) - timedelta(days=20)).isoformat())
    new = _append(client, history_api, h, transcript="new one")
    keep = _append(client, history_api, auth_headers(other, "history"), transcript="other user's, default retention",
                   occurred_at=(datetime.now(UTC) - timedelta(days=20)).isoformat())
    db.execute("INSERT INTO history.retention (user_id, days) VALUES (%s, 30)", (uid,))

    async def run(days_ahead: int) -> None:
        pool = await create_pool(postgres_url)
        try:
            await run_retention(pool, HistorySettings(history_default_retention_days=90), now=datetime.now(UTC) + timedelta(days=days_ahead))
        finally:
            await pool.close()

    def ids(u):
        return {r[0] for r in db.execute("SELECT id::text FROM history.interactions WHERE user_id = %s", (u,)).fetchall()}

    asyncio.run(run(5))
    assert ids(uid) == {old["id"], new["id"]}
    asyncio.run(run(15))  # the old row is now 35 days old: over 30
    assert ids(uid) == {new["id"]} and ids(other) == {keep["id"]}
    asyncio.run(run(75))  # the other user's row is 95 days old: over the default 90
    assert ids(other) == set()
    asyncio.run(run(31))
    assert ids(uid) == set()


def test_retention_preference_from_users_service_is_enforced_by_the_worker(client, users_svc, history_api, history_worker, db, poll):
    uid = new_uid()
    h, uh = auth_headers(uid, "history"), auth_headers(uid, "users")
    assert client.post(users_svc.url + "/internal/users/provision", headers=uh).status_code == 201
    old = _append(client, history_api, h, transcript="ten days ago", occurred_at=(datetime.now(UTC) - timedelta(days=10)).isoformat())
    recent = _append(client, history_api, h, transcript="yesterday", occurred_at=(datetime.now(UTC) - timedelta(days=1)).isoformat())
    r = client.patch(users_svc.url + "/v1/users/me/preferences", json={"history_retention_days": 7}, headers=uh)
    assert r.status_code == 200, r.text
    poll(lambda: {i["id"] for i in client.get(history_api.url + "/v1/history", headers=h).json()["items"]}, lambda s: s == {recent["id"]})
    assert old["id"] not in {r[0] for r in db.execute("SELECT id::text FROM history.interactions").fetchall()}


def test_account_deletion_erases_history_and_suggestions(client, users_svc, history_api, history_worker, db, poll):
    uid = new_uid()
    h, uh = auth_headers(uid, "history"), auth_headers(uid, "users")
    assert client.post(users_svc.url + "/internal/users/provision", headers=uh).status_code == 201
    _append(client, history_api, h, transcript="one")
    _append(client, history_api, h, transcript="two")
    db.execute("""INSERT INTO history.suggestions (id, user_id, title, rrule, weekday, minute_of_day, occurrences, embedding)
                  VALUES (%s, %s, 'x', 'FREQ=WEEKLY;BYDAY=MO', 0, 0, 3, array_fill(0.1, ARRAY[384])::vector)""", (str(uuid.uuid4()), uid))
    assert client.delete(users_svc.url + "/v1/users/me", headers=uh).status_code == 204

    def left():
        return sum(db.execute(f"SELECT count(*) FROM history.{t} WHERE user_id = %s", (uid,)).fetchone()[0]
                   for t in ("interactions", "suggestions", "retention"))

    poll(left, lambda n: n == 0)
