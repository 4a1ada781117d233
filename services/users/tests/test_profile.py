"""Provisioning, the profile, the cache and the audit log."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

import httpx
from eindr_common.identity import plan_key
from eindr_common.testing import auth_headers, new_uid


def test_provision_creates_then_returns_the_same_profile(users_svc, http, db, rds, events_of):
    uid = new_uid()
    claims = {
        "email": "a@example.com",
        "name": "  Ada Lovelace ",
        "picture": "https://img.example/a.png",
        "phone_number": "+441234",
    }
    h = auth_headers(uid, "users", claims=claims)
    first = http.post(
        users_svc.url + "/internal/users/provision",
        json={"language": "pt_BR", "timezone": "America/Sao_Paulo"},
        headers=h,
    )
    assert first.status_code == 201
    body = first.json()
    assert body["id"] == uid
    assert body["display_name"] == "Ada Lovelace"
    assert body["avatar_url"] == "https://img.example/a.png"
    assert body["email"] == "a@example.com" and body["phone"] == "+441234"
    assert body["plan"] == "free"
    again = http.post(users_svc.url + "/internal/users/provision", headers=h)
    assert again.status_code == 200
    assert again.json() == body
    # Device hints seed the preferences of the new account.
    prefs = http.get(users_svc.url + "/v1/users/me/preferences", headers=h).json()
    assert prefs["language"] == "pt-BR" and prefs["timezone"] == "America/Sao_Paulo"
    assert rds.get(plan_key(uid)) == "free"
    assert [e["type"] for e in events_of(uid)] == ["user.created"]
    assert db.execute("SELECT count(*) FROM users.outbox WHERE payload->>'uid' = %s", (uid,)).fetchone()[0] == 0


def test_provision_ignores_unusable_hints_and_claims(users_svc, http):
    uid = new_uid()
    h = auth_headers(
        uid,
        "users",
        claims={
            "name": "bad\x00name",
            "picture": "javascript:alert(1)",
            "email": 42,
            "phone_number": "+" + "1" * 40,
        },
    )
    r = http.post(
        users_svc.url + "/internal/users/provision",
        json={"language": "klingon!!", "timezone": "Mars/Olympus"},
        headers=h,
    )
    assert r.status_code == 201
    body = r.json()
    assert body["display_name"] is None and body["avatar_url"] is None
    assert body["email"] is None and body["phone"] is None
    prefs = http.get(users_svc.url + "/v1/users/me/preferences", headers=h).json()
    assert prefs["language"] == "en" and prefs["timezone"] == "UTC"


async def test_concurrent_first_logins_create_one_user(users_svc, postgres_url):
    import psycopg

    uid = new_uid()
    h = auth_headers(uid, "users", claims={"email": "c@example.com"})
    async with httpx.AsyncClient(base_url=users_svc.url, timeout=30) as client:
        responses = await asyncio.gather(*(client.post("/internal/users/provision", headers=h) for _ in range(8)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 7 + [201]
    assert len({r.json()["created_at"] for r in responses}) == 1
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM users.users WHERE id = %s", (uid,)).fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM users.preferences WHERE user_id = %s", (uid,)).fetchone()[0] == 1


def test_email_and_phone_follow_the_verified_token(users_svc, http, make_user, db):
    uid, _ = make_user(claims={"email": "old@example.com"})
    h = auth_headers(uid, "users", claims={"email": "new@example.com", "phone_number": "+15550100"})
    me = http.get(users_svc.url + "/v1/users/me", headers=h).json()
    assert me["email"] == "new@example.com" and me["phone"] == "+15550100"
    # The next login stores them.
    assert http.post(users_svc.url + "/internal/users/provision", headers=h).status_code == 200
    assert db.execute("SELECT email, phone FROM users.users WHERE id = %s", (uid,)).fetchone() == (
        "new@example.com",
        "+15550100",
    )


def test_patch_profile_changes_only_fields_sent_and_is_audited(users_svc, http, make_user, db, rds):
    uid, h = make_user()
    before = http.get(users_svc.url + "/v1/users/me", headers=h).json()
    r = http.patch(
        users_svc.url + "/v1/users/me",
        json={"avatar_url": "https://cdn.example/me.jpg"},
        headers={**h, "x-request-id": "req-profile-1"},
    )
    assert r.status_code == 200
    after = r.json()
    assert after["avatar_url"] == "https://cdn.example/me.jpg"
    assert after["display_name"] == before["display_name"]
    assert datetime.fromisoformat(after["updated_at"]) > datetime.fromisoformat(before["updated_at"])
    # null clears a field
    cleared = http.patch(users_svc.url + "/v1/users/me", json={"display_name": None}, headers=h).json()
    assert cleared["display_name"] is None and cleared["avatar_url"] == "https://cdn.example/me.jpg"
    row = db.execute(
        "SELECT actor, subject, fields, request_id FROM users.audit_log WHERE subject = %s AND action = 'profile.updated' ORDER BY id LIMIT 1",
        (uid,),
    ).fetchone()
    assert row == (uid, uid, ["avatar_url"], "req-profile-1")
    # ...and reported once to the platform audit trail (the audit service's stream).
    from eindr_common.audit import AUDIT_STREAM

    reported = [f for _, f in rds.xrange(AUDIT_STREAM) if f["subject_uid"] == uid and f["action"] == "profile.updated"]
    assert len(reported) == 2
    first = reported[0]
    assert (first["service"], first["actor_uid"], first["resource_type"], first["request_id"]) == (
        "users",
        uid,
        "user",
        "req-profile-1",
    )
    assert json.loads(first["details"]) == {"fields": ["avatar_url"]}
    assert "cdn.example" not in first["details"]  # field names only, never values


def test_profile_cache_is_read_and_invalidated_on_patch(users_svc, http, make_user, rds):
    uid, h = make_user()
    key = f"eindr:users:cache:profile:{uid}"
    http.get(users_svc.url + "/v1/users/me", headers=h)
    assert rds.get(key) is not None
    # The cache really serves reads: a planted value comes back...
    import json

    planted = {**json.loads(rds.get(key)), "display_name": "from-cache"}
    rds.set(key, json.dumps(planted), ex=60)
    assert http.get(users_svc.url + "/v1/users/me", headers=h).json()["display_name"] == "from-cache"
    # ...until a write invalidates it.
    assert http.patch(users_svc.url + "/v1/users/me", json={"display_name": "Fresh"}, headers=h).status_code == 200
    assert rds.get(key) is None
    assert http.get(users_svc.url + "/v1/users/me", headers=h).json()["display_name"] == "Fresh"


def test_preferences_cache_is_invalidated_on_patch(users_svc, http, make_user, rds):
    uid, h = make_user()
    key = f"eindr:users:cache:preferences:{uid}"
    assert http.get(users_svc.url + "/v1/users/me/preferences", headers=h).json()["voice"] is None
    assert rds.get(key) is not None
    assert (
        http.patch(
            users_svc.url + "/v1/users/me/preferences", json={"voice": "en_US-joe-medium"}, headers=h
        ).status_code
        == 200
    )
    assert rds.get(key) is None
    assert http.get(users_svc.url + "/v1/users/me/preferences", headers=h).json()["voice"] == "en_US-joe-medium"


def test_health_readiness_and_metrics(users_svc, http):
    assert http.get(users_svc.url + "/healthz").json() == {"status": "ok"}
    ready = http.get(users_svc.url + "/readyz").json()
    assert ready["checks"] == {"postgres": "ok", "redis": "ok"}
    assert "eindr_http_requests_total" in http.get(users_svc.url + "/metrics").text
    paths = http.get(users_svc.url + "/openapi.json").json()["paths"]
    assert "/v1/users/me" in paths and "/internal/users/provision" not in paths
