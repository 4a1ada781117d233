"""The audit trail end to end: events recorded by any service land chained in the store,
admins search it, users see and export only their own, and tampering is detected."""

from __future__ import annotations

import asyncio
import csv
import io
import subprocess
import sys
import time

import httpx
import psycopg
import redis.asyncio as aioredis
from eindr_common.audit import AUDIT_STREAM, record
from eindr_common.identity import Principal
from eindr_common.testing import auth_headers, new_uid


def _record_events(redis_url: str, events: list[dict]) -> None:
    async def go():
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        for e in events:
            await record(client, **e)
        await client.aclose()

    asyncio.run(go())


def _wait_for(predicate, timeout_s: float = 15):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_admin_search_user_trail_and_export(audit_service, redis_url):
    alice, bob, admin = new_uid(), new_uid(), new_uid()
    _record_events(redis_url, [
        {"service": "users", "actor": Principal(uid=alice, claims={"ip": "10.1.2.3"}), "action": "preferences.update",
         "resource_type": "preferences", "resource_id": alice, "details": {"fields": ["timezone"]}},
        {"service": "reminders", "actor": Principal(uid=bob), "action": "reminder.create", "resource_type": "reminder", "resource_id": "r-1"},
        {"service": "users", "actor": Principal(uid=admin, roles=("admin",)), "action": "plan.change",
         "resource_type": "user", "resource_id": alice, "subject_uid": alice, "details": {"plan": "premium"}},
    ])
    admin_h = auth_headers(admin, "audit", roles=("admin",))
    page = _wait_for(lambda: (r := httpx.get(audit_service.url + "/v1/admin/audit", params={"uid": alice}, headers=admin_h).json())["items"]
                     and len(r["items"]) == 2 and r)
    assert [i["action"] for i in page["items"]] == ["plan.change", "preferences.update"]  # newest first
    assert page["items"][1]["source_ip"] == "10.1.2.3"
    assert page["items"][0]["actor_roles"] == ["admin"]

    # Not an admin: 403. Users see only what they did or what was done to them.
    assert httpx.get(audit_service.url + "/v1/admin/audit", headers=auth_headers(alice, "audit")).status_code == 403
    mine = httpx.get(audit_service.url + "/v1/audit/me", headers=auth_headers(alice, "audit")).json()["items"]
    assert {i["action"] for i in mine} == {"plan.change", "preferences.update"}
    bobs = httpx.get(audit_service.url + "/v1/audit/me", headers=auth_headers(bob, "audit")).json()["items"]
    assert [i["action"] for i in bobs] == ["reminder.create"]

    export = httpx.get(audit_service.url + "/v1/audit/me/export", headers=auth_headers(alice, "audit"))
    assert export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [r["action"] for r in rows] == ["preferences.update", "plan.change"]  # oldest first


def test_pagination_and_bad_input(audit_service, redis_url):
    actor = new_uid()
    _record_events(redis_url, [
        {"service": "notes", "actor": Principal(uid=actor), "action": "note.create", "resource_type": "note", "resource_id": str(i)}
        for i in range(5)
    ])
    admin_h = auth_headers(new_uid(), "audit", roles=("admin",))
    _wait_for(lambda: len(httpx.get(audit_service.url + "/v1/admin/audit", params={"actor": actor}, headers=admin_h).json()["items"]) == 5)
    first = httpx.get(audit_service.url + "/v1/admin/audit", params={"actor": actor, "limit": 2}, headers=admin_h).json()
    second = httpx.get(audit_service.url + "/v1/admin/audit", params={"actor": actor, "limit": 2, "cursor": first["next_cursor"]}, headers=admin_h).json()
    assert [i["resource_id"] for i in first["items"] + second["items"]] == ["4", "3", "2", "1", "0"][:4]

    for params, field in [({"since": "2026-01-01T00:00:00"}, "since"), ({"action": "a\x00b"}, "action"),
                          ({"cursor": "garbage!"}, "cursor"), ({"limit": 0}, "limit"),
                          ({"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "since")]:
        r = httpx.get(audit_service.url + "/v1/admin/audit", params=params, headers=admin_h)
        assert r.status_code == 400, (params, r.text)
        assert r.json()["errors"][0]["field"] == field
    assert httpx.get(audit_service.url + "/v1/audit/me").status_code == 401


def test_redelivered_events_are_stored_once(audit_service, redis_url, postgres_url):
    event_id = "fixed-" + new_uid()

    async def add_twice():
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        fields = {"event_id": event_id, "at": repr(time.time()), "service": "ledger", "actor_uid": "x", "actor_roles": "",
                  "source_ip": "", "action": "entry.create", "resource_type": "entry", "resource_id": "e",
                  "subject_uid": "x", "request_id": "", "details": "{}"}
        await client.xadd(AUDIT_STREAM, fields)
        await client.xadd(AUDIT_STREAM, fields)
        await client.aclose()

    asyncio.run(add_twice())
    with psycopg.connect(postgres_url) as conn:
        _wait_for(lambda: conn.execute("SELECT count(*) FROM audit.records WHERE event_id = %s", (event_id,)).fetchone()[0] == 1)
        time.sleep(0.5)
        assert conn.execute("SELECT count(*) FROM audit.records WHERE event_id = %s", (event_id,)).fetchone()[0] == 1


def test_tampering_is_detected(start_service, service_env, fresh_database, redis_url):
    # A separate database and stream consumer group so this test's tampering stays its own.
    own_redis = redis_url.rsplit("/", 1)[0] + "/1"
    svc = start_service("audit-tamper", "eindr_audit.app:create_app", env={"EINDR_DATABASE_URL": fresh_database, "EINDR_REDIS_URL": own_redis})
    actor = new_uid()
    _record_events(own_redis, [
        {"service": "ledger", "actor": Principal(uid=actor), "action": "entry.create", "resource_type": "entry", "resource_id": str(i)}
        for i in range(4)
    ])
    admin_h = auth_headers(new_uid(), "audit", roles=("admin",))
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        _wait_for(lambda: conn.execute("SELECT count(*) FROM audit.records WHERE actor_uid = %s", (actor,)).fetchone()[0] == 4)
        intact = httpx.post(svc.url + "/v1/admin/audit/verify", headers=admin_h).json()
        assert intact["ok"] is True and intact["checked"] >= 4
        cli = [sys.executable, "-m", "eindr_audit.verify"]
        env = {**service_env, "EINDR_DATABASE_URL": fresh_database, "EINDR_REDIS_URL": own_redis}
        assert subprocess.run(cli, env=env, capture_output=True, check=False).returncode == 0

        # The table refuses edits outright ...
        try:
            conn.execute("UPDATE audit.records SET action = 'x'")
            raise AssertionError("update was allowed")
        except psycopg.errors.RaiseException:
            pass
        # ... and if someone with the power to bypass that edits a record, the chain shows it.
        seq = conn.execute("SELECT seq FROM audit.records WHERE actor_uid = %s AND resource_id = '1'", (actor,)).fetchone()[0]
        conn.execute("ALTER TABLE audit.records DISABLE TRIGGER records_append_only")
        conn.execute("UPDATE audit.records SET details = '{\"amount\": \"1000000\"}' WHERE seq = %s", (seq,))
        edited = httpx.post(svc.url + "/v1/admin/audit/verify", headers=admin_h).json()
        assert edited["ok"] is False and edited["first_bad_seq"] == seq
        assert "hash" in edited["reason"]
        result = subprocess.run(cli, env=env, capture_output=True, text=True, check=False)
        assert result.returncode == 1 and f"BROKEN at record {seq}" in result.stdout

        conn.execute("UPDATE audit.records SET details = '{}' WHERE seq = %s", (seq,))
        conn.execute("DELETE FROM audit.records WHERE seq = %s", (seq + 1,))
        deleted = httpx.post(svc.url + "/v1/admin/audit/verify", headers=admin_h).json()
        assert deleted["ok"] is False and deleted["first_bad_seq"] <= seq + 1
