"""Devices (list, logout), revocation, identity and account deletion across services."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from eindr_common import events
from eindr_common.identity import revoked_key
from eindr_common.testing import auth_headers, eventually, new_uid

ROUTES = [
    ("POST", "/v1/auth/session", {"device": {"device_id": "d", "platform": "web"}}),
    ("GET", "/v1/auth/devices", None),
    ("DELETE", "/v1/auth/devices/5b0c3f8e-5d43-4b7e-9a39-0c1f6c1f2a11", None),
    ("POST", "/v1/auth/revoke", {"uid": "someone"}),
]


@pytest.mark.parametrize("method,path,body", ROUTES)
def test_missing_internal_token_is_401(auth_svc, http, method, path, body):
    r = http.request(method, auth_svc.url + path, json=body)
    assert r.status_code == 401 and r.json()["code"] == "missing_internal_token"


@pytest.mark.parametrize("method,path,body", ROUTES)
def test_token_for_another_audience_is_401(auth_svc, http, method, path, body):
    r = http.request(method, auth_svc.url + path, json=body, headers=auth_headers(new_uid(), "users", roles=("admin",)))
    assert r.status_code == 401 and r.json()["code"] == "invalid_internal_token"


@pytest.mark.parametrize("uid", ["u" * 129, "a\x00b"])
def test_token_with_an_unusable_subject_is_401(auth_svc, http, uid):
    for method, path, body in ROUTES:
        r = http.request(method, auth_svc.url + path, json=body, headers=auth_headers(uid, "auth", roles=("admin",)))
        assert r.status_code == 401, (method, path, r.text)
        assert r.json()["code"] == "invalid_internal_token"


def test_devices_list_is_the_callers_own(make_device, session_for, auth_svc, http):
    _a_uid, a, a_session = session_for()
    http.post(auth_svc.url + "/v1/auth/session", json={"device": make_device(platform="web")}, headers=a)
    _b_uid, b, b_session = session_for()
    a_items = http.get(auth_svc.url + "/v1/auth/devices", headers=a).json()["items"]
    b_items = http.get(auth_svc.url + "/v1/auth/devices", headers=b).json()["items"]
    assert len(a_items) == 2 and [i["id"] for i in b_items] == [b_session["device"]["id"]]
    assert b_session["device"]["id"] not in {i["id"] for i in a_items}
    assert a_session["device"] in a_items or a_session["device"]["id"] in {i["id"] for i in a_items}


def test_user_a_cannot_sign_out_user_b_device(session_for, auth_svc, http, db):
    _, a, _ = session_for()
    _b_uid, b, b_session = session_for()
    b_dev = b_session["device"]["id"]
    r = http.delete(auth_svc.url + f"/v1/auth/devices/{b_dev}", headers=a)
    assert r.status_code == 404 and r.json()["code"] == "device_not_found"
    assert [i["id"] for i in http.get(auth_svc.url + "/v1/auth/devices", headers=b).json()["items"]] == [b_dev]
    assert db.execute(
        "SELECT signed_out_at, push_token IS NOT NULL FROM auth.devices WHERE id = %s", (b_dev,)
    ).fetchone() == (None, True)


def test_logout_is_idempotent_and_a_new_session_revives_the_device(session_for, auth_svc, http, db):
    _uid, h, s = session_for()
    dev_id = s["device"]["id"]
    assert http.delete(auth_svc.url + f"/v1/auth/devices/{dev_id}", headers=h).status_code == 204
    assert http.get(auth_svc.url + "/v1/auth/devices", headers=h).json()["items"] == []
    assert db.execute("SELECT push_token FROM auth.devices WHERE id = %s", (dev_id,)).fetchone()[0] is None
    assert http.delete(auth_svc.url + f"/v1/auth/devices/{dev_id}", headers=h).status_code == 204
    assert http.delete(auth_svc.url + f"/v1/auth/devices/{uuid.uuid4()}", headers=h).status_code == 404
    r = http.delete(auth_svc.url + "/v1/auth/devices/not-a-uuid", headers=h)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "id"
    again = http.post(
        auth_svc.url + "/v1/auth/session",
        json={"device": {"device_id": s["device"]["device_id"], "platform": "android"}},
        headers=h,
    ).json()
    assert again["device"]["id"] == dev_id
    assert [i["id"] for i in http.get(auth_svc.url + "/v1/auth/devices", headers=h).json()["items"]] == [dev_id]


def test_revoke_requires_admin_and_sets_the_key(auth_svc, http, rds, db):
    uid = new_uid()
    # Neither the user themself nor another (non-admin) user may revoke.
    for caller in (uid, new_uid()):
        r = http.post(
            auth_svc.url + "/v1/auth/revoke", json={"uid": uid}, headers=auth_headers(caller, "auth", plan="premium")
        )
        assert r.status_code == 403 and r.json()["code"] == "admin_required"
    assert rds.get(revoked_key(uid)) is None

    before = int(time.time())
    r = http.post(
        auth_svc.url + "/v1/auth/revoke",
        json={"uid": uid},
        headers={**auth_headers("root", "auth", roles=("admin",)), "x-request-id": "rev-1"},
    )
    assert r.status_code == 200
    body = r.json()
    assert body["uid"] == uid
    stored = int(rds.get(revoked_key(uid)))
    assert stored >= before
    from datetime import datetime

    assert int(datetime.fromisoformat(body["revoked_at"]).timestamp()) == stored
    assert rds.ttl(revoked_key(uid)) == -1  # no expiry
    assert db.execute("SELECT actor, action, request_id FROM auth.audit_log WHERE subject = %s", (uid,)).fetchone() == (
        "root",
        "tokens.revoked",
        "rev-1",
    )
    from eindr_common.audit import AUDIT_STREAM

    reported = [f for _, f in rds.xrange(AUDIT_STREAM) if f["subject_uid"] == uid and f["service"] == "auth"]
    assert [(f["action"], f["actor_uid"], f["actor_roles"], f["request_id"]) for f in reported] == [
        ("tokens.revoked", "root", "admin", "rev-1")
    ]


@pytest.mark.parametrize(
    "body,field",
    [
        ({}, "uid"),
        ({"uid": ""}, "uid"),
        ({"uid": "u" * 129}, "uid"),
        ({"uid": "a\x00b"}, "uid"),
        ({"uid": "x" * (1024 * 1024)}, "uid"),
    ],
)
def test_revoke_validation(auth_svc, http, body, field):
    r = http.post(auth_svc.url + "/v1/auth/revoke", json=body, headers=auth_headers("root", "auth", roles=("admin",)))
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == field


def test_account_deletion_erases_rows_in_users_and_auth(make_device, session_for, auth_svc, users_svc, http, db, rds):
    uid, h, _ = session_for()
    http.post(auth_svc.url + "/v1/auth/session", json={"device": make_device(platform="ios")}, headers=h)
    other_uid, _, _ = session_for()
    assert db.execute("SELECT count(*) FROM auth.devices WHERE user_id = %s", (uid,)).fetchone()[0] == 2

    before = int(time.time())
    r = http.delete(users_svc.url + "/v1/users/me", headers=auth_headers(uid, "users"))
    assert r.status_code == 204
    assert db.execute("SELECT count(*) FROM users.users WHERE id = %s", (uid,)).fetchone()[0] == 0
    assert eventually(
        lambda: db.execute("SELECT count(*) FROM auth.devices WHERE user_id = %s", (uid,)).fetchone()[0] == 0
    )
    assert http.get(auth_svc.url + "/v1/auth/devices", headers=h).json()["items"] == []
    assert db.execute("SELECT count(*) FROM auth.audit_log WHERE subject = %s", (uid,)).fetchone()[0] == 0
    # The deleted account's outstanding tokens are refused by the gateway from now on.
    assert eventually(lambda: rds.get(revoked_key(uid)) is not None)
    assert int(rds.get(revoked_key(uid))) >= before
    # Nobody else's devices went with it.
    assert db.execute("SELECT count(*) FROM auth.devices WHERE user_id = %s", (other_uid,)).fetchone()[0] == 1


def test_user_deleted_is_handled_idempotently_and_bad_events_do_not_block(session_for, rds, db):
    uid, _, _ = session_for()
    later_uid, _, _ = session_for()
    stream = events.stream_name("users")
    ids = []
    # A malformed event first: it must be dropped, not block the ones after it.
    ids.append(rds.xadd(stream, {"id": "x", "type": "user.deleted", "at": "0", "payload": json.dumps({"uid": None})}))
    # The same deletion twice, then a stale redelivery with an older time: the revocation
    # time only moves forward.
    for at in (2_000_000_000, 2_000_000_000, 1_000):
        entry = rds.xadd(
            stream,
            {
                "id": uuid.uuid4().hex,
                "type": "user.deleted",
                "at": "0",
                "payload": json.dumps({"uid": uid, "deleted_at": at}),
            },
        )
        ids.append(entry)
    # An older producer's payload, {uid} only: devices erased, nothing revoked.
    ids.append(
        rds.xadd(
            stream,
            {"id": uuid.uuid4().hex, "type": "user.deleted", "at": "0", "payload": json.dumps({"uid": later_uid})},
        )
    )
    assert eventually(
        lambda: (
            db.execute("SELECT count(*) FROM auth.devices WHERE user_id = ANY(%s)", ([uid, later_uid],)).fetchone()[0]
            == 0
        )
    )
    assert eventually(lambda: rds.get(revoked_key(uid)) == "2000000000")
    assert rds.get(revoked_key(later_uid)) is None

    # All five, the malformed one included, were acknowledged by the "auth" group.
    def still_pending() -> set[str]:
        pending = rds.xpending_range(stream, "auth", min=ids[0], max=ids[-1], count=100)
        return {p["message_id"] for p in pending} & set(ids)

    assert eventually(lambda: not still_pending())


def test_health_readiness_metrics_openapi(auth_svc, http):
    assert http.get(auth_svc.url + "/readyz").json()["checks"] == {"postgres": "ok", "redis": "ok"}
    assert "eindr_auth_sessions_total" in http.get(auth_svc.url + "/metrics").text
    paths = http.get(auth_svc.url + "/openapi.json").json()["paths"]
    assert set(paths) == {"/v1/auth/session", "/v1/auth/devices", "/v1/auth/devices/{id}", "/v1/auth/revoke"}
