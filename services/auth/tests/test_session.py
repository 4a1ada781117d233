"""POST /v1/auth/session against the real users service."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

import httpx
import pytest
from eindr_common.plans import features_for
from eindr_common.testing import auth_headers, new_uid


def test_first_session_provisions_the_user_and_registers_the_device(make_device, auth_svc, users_svc, http, db):
    uid = new_uid()
    h = auth_headers(uid, "auth", claims={"email": "s@example.com", "name": "Sam", "phone_number": "+3161234"})
    dev = make_device(
        platform="ios", push_token="apns-1", app_version="1.4.0 (77)", locale="nl_NL", timezone="Europe/Amsterdam"
    )
    r = http.post(auth_svc.url + "/v1/auth/session", json={"device": dev}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["user"]["id"] == uid
    assert body["user"]["email"] == "s@example.com" and body["user"]["display_name"] == "Sam"
    assert body["plan"] == "free" and body["features"] == features_for("free")
    assert body["features"]["calendar_sync"] is False
    d = body["device"]
    assert {k: d[k] for k in ("device_id", "platform", "push_token", "app_version", "locale", "timezone")} == {
        **{k: dev[k] for k in ("device_id", "platform", "push_token", "app_version", "timezone")},
        "locale": "nl-NL",
    }
    assert set(d) == {"id", "device_id", "platform", "push_token", "app_version", "locale", "timezone", "last_seen_at"}
    # The users service has the account, seeded with the device's locale and zone.
    assert db.execute("SELECT count(*) FROM users.users WHERE id = %s", (uid,)).fetchone()[0] == 1
    assert db.execute("SELECT language, timezone FROM users.preferences WHERE user_id = %s", (uid,)).fetchone() == (
        "nl-NL",
        "Europe/Amsterdam",
    )


def test_same_device_id_updates_the_same_row(make_device, session_for, auth_svc, http, db):
    dev = make_device(push_token="tok-a", app_version="1.0")
    uid, h, first = session_for(dev)
    r = http.post(
        auth_svc.url + "/v1/auth/session",
        json={"device": {"device_id": dev["device_id"], "platform": "android", "push_token": "tok-b"}},
        headers=h,
    )
    second = r.json()["device"]
    assert second["id"] == first["device"]["id"]
    assert second["push_token"] == "tok-b"
    assert second["app_version"] == "1.0"  # not sent: kept
    assert datetime.fromisoformat(second["last_seen_at"]) >= datetime.fromisoformat(first["device"]["last_seen_at"])
    assert db.execute("SELECT count(*) FROM auth.devices WHERE user_id = %s", (uid,)).fetchone()[0] == 1
    # null clears the push token
    r = http.post(auth_svc.url + "/v1/auth/session", json={"device": {**dev, "push_token": None}}, headers=h)
    assert r.json()["device"]["push_token"] is None


def test_premium_plan_unlocks_premium_features(make_device, session_for, auth_svc, users_svc, http):
    uid, h, _ = session_for()
    admin = auth_headers("admin", "users", roles=("admin",))
    assert http.put(users_svc.url + f"/v1/users/{uid}/plan", json={"plan": "premium"}, headers=admin).status_code == 200
    body = http.post(auth_svc.url + "/v1/auth/session", json={"device": make_device()}, headers=h).json()
    assert body["plan"] == "premium" and body["user"]["plan"] == "premium"
    assert body["features"] == features_for("premium") and body["features"]["calendar_sync"] is True


async def test_two_concurrent_first_logins_make_one_user_and_one_device(make_device, auth_svc, postgres_url):
    import psycopg

    uid = new_uid()
    h = auth_headers(uid, "auth", claims={"email": "race@example.com"})
    dev = make_device(push_token="race-token")
    async with httpx.AsyncClient(base_url=auth_svc.url, timeout=30) as client:
        responses = await asyncio.gather(
            *(client.post("/v1/auth/session", json={"device": dev}, headers=h) for _ in range(6))
        )
    assert [r.status_code for r in responses] == [200] * 6, [r.text for r in responses]
    assert len({r.json()["device"]["id"] for r in responses}) == 1
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM users.users WHERE id = %s", (uid,)).fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM auth.devices WHERE user_id = %s", (uid,)).fetchone()[0] == 1


def test_push_token_moves_with_the_phone(make_device, session_for, auth_svc, http, db):
    token = "shared-phone-" + new_uid()
    _a_uid, a, _ = session_for(make_device(push_token=token))
    _b_uid, b, _ = session_for(make_device(push_token=token))
    # A's old row no longer addresses the phone B now uses.
    assert http.get(auth_svc.url + "/v1/auth/devices", headers=a).json()["items"][0]["push_token"] is None
    assert http.get(auth_svc.url + "/v1/auth/devices", headers=b).json()["items"][0]["push_token"] == token
    assert db.execute("SELECT count(*) FROM auth.devices WHERE push_token = %s", (token,)).fetchone()[0] == 1


def _assert_400(r, field: str) -> None:
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert field in {e["field"] for e in r.json()["errors"]}, r.json()


@pytest.mark.parametrize(
    "dev,field",
    [
        ({"platform": "android"}, "device.device_id"),
        ({"device_id": "d" * 129, "platform": "android"}, "device.device_id"),
        ({"device_id": "", "platform": "android"}, "device.device_id"),
        ({"device_id": "a\x00b", "platform": "android"}, "device.device_id"),
        ({"device_id": "d1", "platform": "symbian"}, "device.platform"),
        ({"device_id": "d1"}, "device.platform"),
        ({"device_id": "d1", "platform": "ios", "push_token": "t\x00"}, "device.push_token"),
        ({"device_id": "d1", "platform": "ios", "push_token": "x" * (1024 * 1024)}, "device.push_token"),
        ({"device_id": "d1", "platform": "ios", "app_version": "x" * (1024 * 1024)}, "device.app_version"),
        ({"device_id": "d1", "platform": "ios", "locale": "not a locale"}, "device.locale"),
        ({"device_id": "d1", "platform": "ios", "timezone": "Mars/Base"}, "device.timezone"),
        ({"device_id": "d1", "platform": "ios", "timezone": "\x00"}, "device.timezone"),
        ({"device_id": "d1", "platform": "ios", "extra": 1}, "device.extra"),
    ],
)
def test_bad_device_is_400_naming_the_field(auth_svc, http, dev, field):
    r = http.post(auth_svc.url + "/v1/auth/session", json={"device": dev}, headers=auth_headers(new_uid(), "auth"))
    _assert_400(r, field)


def test_missing_body_is_400(auth_svc, http):
    r = http.post(auth_svc.url + "/v1/auth/session", headers=auth_headers(new_uid(), "auth"))
    assert r.status_code == 400


def test_users_service_down_is_503_and_nothing_is_written(make_device, start_service, http, db):
    from eindr_common.localstack import free_port

    lonely = start_service(
        "auth-no-users", "eindr_auth.app:create_app", env={"EINDR_USERS_URL": f"http://127.0.0.1:{free_port()}"}
    )
    uid = new_uid()
    r = http.post(lonely.url + "/v1/auth/session", json={"device": make_device()}, headers=auth_headers(uid, "auth"))
    assert r.status_code == 503
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "upstream_unavailable"
    assert db.execute("SELECT count(*) FROM auth.devices WHERE user_id = %s", (uid,)).fetchone()[0] == 0
    lonely.stop()


def test_session_of_user_b_never_touches_user_a_devices(session_for, make_device, auth_svc, http, db):
    dev = make_device(push_token="a-token-" + make_device()["device_id"], app_version="1.0")
    _a_uid, a, a_session = session_for(dev)
    # B signs in with the same client device_id (a shared or handed-down phone), no push token.
    _b_uid, b, b_session = session_for({"device_id": dev["device_id"], "platform": "ios", "app_version": "9.9"})
    assert b_session["device"]["id"] != a_session["device"]["id"]
    a_items = http.get(auth_svc.url + "/v1/auth/devices", headers=a).json()["items"]
    assert [(i["id"], i["platform"], i["app_version"], i["push_token"]) for i in a_items] == [
        (a_session["device"]["id"], "android", "1.0", dev["push_token"])
    ]
    assert [i["id"] for i in http.get(auth_svc.url + "/v1/auth/devices", headers=b).json()["items"]] == [
        b_session["device"]["id"]
    ]


def test_session_honours_idempotency_key(session_for, make_device, auth_svc, http):
    _uid, h, _ = session_for()
    body = {"device": make_device()}
    first = http.post(auth_svc.url + "/v1/auth/session", json=body, headers={**h, "Idempotency-Key": "start-1"})
    again = http.post(auth_svc.url + "/v1/auth/session", json=body, headers={**h, "Idempotency-Key": "start-1"})
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"


def test_features_follow_the_platform_flags_including_user_overrides(session_for, make_device, auth_svc, rds, http):
    from eindr_common import flags

    uid, h, first = session_for()
    assert first["features"] == flags_default(first["plan"])
    # An operator turns a premium feature on for this one (free) user.
    rds.set(flags.user_key(uid), json.dumps({"calendar_sync": True}))
    again = http.post(auth_svc.url + "/v1/auth/session", json={"device": make_device()}, headers=h).json()
    assert again["plan"] == "free"
    assert again["features"] == {**flags_default("free"), "calendar_sync": True}


def flags_default(plan: str) -> dict[str, bool]:
    return dict(sorted(features_for(plan).items()))


async def test_many_users_registering_one_push_token_at_once(auth_svc, make_device):
    """No deadlock (500) when several accounts claim the same phone's token together;
    afterwards exactly one row holds it."""
    import psycopg

    token = "contended-" + new_uid()
    users = [new_uid() for _ in range(6)]
    async with httpx.AsyncClient(base_url=auth_svc.url, timeout=60) as client:
        responses = await asyncio.gather(
            *(
                client.post(
                    "/v1/auth/session",
                    json={"device": make_device(push_token=token)},
                    headers=auth_headers(uid, "auth"),
                )
                for uid in users
            )
        )
    assert [r.status_code for r in responses] == [200] * 6, [r.text for r in responses if r.status_code != 200]
    with psycopg.connect(auth_svc.env["EINDR_DATABASE_URL"]) as conn:
        assert conn.execute("SELECT count(*) FROM auth.devices WHERE push_token = %s", (token,)).fetchone()[0] == 1
