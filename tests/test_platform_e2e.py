"""Platform flows through the real gateway: first login, preferences, devices, plan
changes, revocation and account deletion across the auth and users services."""

from __future__ import annotations

import time

import psycopg
import pytest
from eindr_common.testing import new_uid


def _login(client, uid: str, device_id: str = "phone-1") -> dict:
    r = client(uid).post("/v1/auth/session", json={"device": {"device_id": device_id, "platform": "ios", "timezone": "Europe/Berlin"}})
    assert r.status_code == 200, r.text
    return r.json()


def test_first_login_provisions_and_returns_plan_features_device(client):
    uid = new_uid()
    body = _login(client, uid)
    assert body["user"]["id"] == uid and body["plan"] == "free"
    assert body["features"]["reminders"] is True and body["features"]["calendar_sync"] is False
    assert body["device"]["device_id"] == "phone-1"
    # Again on the next app start: same user, same device row.
    again = _login(client, uid)
    assert again["device"]["id"] == body["device"]["id"]
    assert client(uid).get("/v1/users/me").json()["id"] == uid


@pytest.mark.parametrize(
    "patch,field",
    [
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"language": "not a tag!"}, "language"),
        ({"quiet_hours": {"start": "25:00", "end": "07:00"}}, "quiet_hours.start"),
        ({"voice": "x\u0000y"}, "voice"),
        ({"voice": "x" * 1_000_000}, "voice"),
    ],
)
def test_bad_preferences_are_400_naming_the_field_through_the_gateway(client, patch, field):
    uid = new_uid()
    _login(client, uid)
    before = client(uid).get("/v1/users/me/preferences").json()
    r = client(uid).patch("/v1/users/me/preferences", json=patch)
    if field == "voice" and len(patch["voice"]) > 1000:
        # A megabyte body is refused by the gateway's size limit or the service's validation.
        assert r.status_code in (400, 413)
    else:
        assert r.status_code == 400, r.text
        assert any(e["field"].startswith(field.split(".")[0]) for e in r.json()["errors"]), r.json()
    assert r.headers["content-type"] == "application/problem+json"
    assert client(uid).get("/v1/users/me/preferences").json() == before


def test_a_user_cannot_touch_another_users_devices(client):
    alice, bob = new_uid(), new_uid()
    bob_device = _login(client, bob)["device"]["id"]
    _login(client, alice)
    assert client(alice).delete(f"/v1/auth/devices/{bob_device}").status_code == 404
    assert [d["id"] for d in client(bob).get("/v1/auth/devices").json()["items"]] == [bob_device]
    assert all(d["id"] != bob_device for d in client(alice).get("/v1/auth/devices").json()["items"])


def test_admin_plan_change_reaches_the_gateways_feature_locks(client):
    admin, user = new_uid(), new_uid()
    _login(client, admin)
    _login(client, user)
    locked = client(user).get("/v1/calendar/connections")
    assert locked.status_code == 403 and locked.json()["code"] == "feature_locked"
    assert client(user).put(f"/v1/users/{user}/plan", json={"plan": "premium"}).status_code == 403
    r = client(admin, admin=True).put(f"/v1/users/{user}/plan", json={"plan": "premium"})
    assert r.status_code == 200, r.text
    # Past the lock now; no calendar service runs in this rig, so the gateway answers 503.
    assert client(user).get("/v1/calendar/connections").status_code == 503
    assert _login(client, user)["features"]["calendar_sync"] is True


def test_admin_revocation_refuses_older_tokens_through_the_gateway(client, e2e_gateway):
    admin, victim = new_uid(), new_uid()
    _login(client, victim)
    old_token_client = client(victim)
    assert client(victim).post("/v1/auth/revoke", json={"uid": victim}).status_code == 403
    time.sleep(1.1)  # the revocation is at second granularity, like Firebase's
    r = client(admin, admin=True).post("/v1/auth/revoke", json={"uid": victim})
    assert r.status_code == 200, r.text
    refused = old_token_client.get("/v1/users/me")
    assert refused.status_code == 401 and refused.json()["code"] == "token_revoked"


def test_account_deletion_erases_rows_in_auth_and_users(client, postgres_url):
    uid = new_uid()
    _login(client, uid, "phone-a")
    _login(client, uid, "phone-b")
    assert client(uid).delete("/v1/users/me").status_code == 204
    assert client(uid).get("/v1/users/me").status_code == 404
    with psycopg.connect(postgres_url) as conn:
        deadline = time.monotonic() + 15
        while True:  # auth erases on the user.deleted event: eventually, and soon
            devices = conn.execute("SELECT count(*) FROM auth.devices WHERE user_id = %s", (uid,)).fetchone()[0]
            if devices == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert devices == 0
        assert conn.execute("SELECT count(*) FROM users.users WHERE id = %s", (uid,)).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM users.preferences WHERE user_id = %s", (uid,)).fetchone()[0] == 0
