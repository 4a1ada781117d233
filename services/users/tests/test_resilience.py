"""Redis going away: reads still answer from PostgreSQL, writes still succeed, and the
events written meanwhile reach the stream once Redis is back (transactional outbox)."""

from __future__ import annotations

import json
import time
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis as redis_lib
from eindr_common.events import stream_name
from eindr_common.localstack import free_port, start_redis
from eindr_common.testing import auth_headers, new_uid


def _wait_for(predicate, timeout_s: float = 30.0) -> bool:
    """Polls until true; the deadline only guards against a hang (no timing is asserted)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except redis_lib.RedisError:
            pass
        time.sleep(0.1)
    return predicate()


def _own_database(postgres_url: str, name: str) -> str:
    """A separate database, so that no other users process (all sharing the session's
    Redis) relays this test's outbox."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(postgres_url)
    return urlunsplit(parts._replace(path="/" + name))


def test_events_survive_a_redis_outage(start_service, eindr_tmp, http, postgres_url):
    port = free_port()
    database_url = _own_database(postgres_url, f"users_outage_{port}")
    db = psycopg.connect(database_url, autocommit=True)
    proc, url = start_redis(eindr_tmp / f"redis-outage-{port}", port)
    try:
        svc = start_service(
            "users-outage",
            "eindr_users.app:create_app",
            env={"EINDR_REDIS_URL": url, "EINDR_DATABASE_URL": database_url},
        )
        uid = new_uid()
        h = auth_headers(uid, "users")
        assert http.post(svc.url + "/internal/users/provision", headers=h).status_code == 201

        proc.terminate()
        proc.wait(10)
        # Redis is gone: the cache is skipped, the write commits, its events wait in the outbox.
        assert http.get(svc.url + "/v1/users/me/preferences", headers=h).status_code == 200
        r = http.patch(svc.url + "/v1/users/me/preferences", json={"timezone": "Asia/Kolkata"}, headers=h)
        assert r.status_code == 200 and r.json()["timezone"] == "Asia/Kolkata"
        pending = db.execute(
            "SELECT event_type FROM users.outbox WHERE payload->>'uid' = %s ORDER BY id", (uid,)
        ).fetchall()
        # (user.created may be among them when the background relay held it as Redis went away)
        assert [p[0] for p in pending if p[0] != "user.created"] == [
            "user.timezone_changed",
            "user.preferences_changed",
        ]
        assert http.get(svc.url + "/readyz").status_code == 503

        proc, url = start_redis(eindr_tmp / f"redis-outage-{port}", port)
        client = redis_lib.Redis.from_url(url, decode_responses=True)

        def delivered() -> list[str]:
            return [
                f["type"]
                for _, f in client.xrange(stream_name("users"))
                if json.loads(f["payload"]).get("uid") == uid and f["type"] != "user.created"
            ]

        assert _wait_for(lambda: delivered() == ["user.timezone_changed", "user.preferences_changed"])
        # (published first, then deleted from the outbox when the relay's transaction commits)
        assert _wait_for(
            lambda: (
                db.execute("SELECT count(*) FROM users.outbox WHERE payload->>'uid' = %s", (uid,)).fetchone()[0] == 0
            )
        )
        assert _wait_for(lambda: http.get(svc.url + "/readyz").status_code == 200)
        client.close()
        svc.stop()
    finally:
        db.close()
        proc.terminate()
        proc.wait(10)
