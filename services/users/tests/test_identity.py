"""Every route refuses a call without the gateway's internal token, or with a token minted
for another service; and user A can neither read nor change user B's data."""

from __future__ import annotations

import pytest
from eindr_common.testing import auth_headers, new_uid

ROUTES = [
    ("GET", "/v1/users/me", None),
    ("PATCH", "/v1/users/me", {"display_name": "x"}),
    ("DELETE", "/v1/users/me", None),
    ("GET", "/v1/users/me/preferences", None),
    ("PATCH", "/v1/users/me/preferences", {"timezone": "UTC"}),
    ("PUT", "/v1/users/someone/plan", {"plan": "premium"}),
    ("POST", "/internal/users/provision", None),
]


@pytest.mark.parametrize("method,path,body", ROUTES)
def test_missing_internal_token_is_401(users_svc, http, method, path, body):
    r = http.request(method, users_svc.url + path, json=body)
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "missing_internal_token"


@pytest.mark.parametrize("method,path,body", ROUTES)
def test_token_for_another_audience_is_401(users_svc, http, method, path, body):
    r = http.request(method, users_svc.url + path, json=body, headers=auth_headers(new_uid(), "auth", roles=("admin",)))
    assert r.status_code == 401
    assert r.json()["code"] == "invalid_internal_token"


def test_forged_and_malformed_tokens_are_401(users_svc, http):
    from eindr_common.identity import Principal, mint_internal_token

    forged = mint_internal_token(Principal(uid="x"), "users", "another-secret-that-is-long-enough-0123456789")
    for header in ("Bearer " + forged, "Bearer", "Basic abc", "Bearer not.a.jwt"):
        r = http.get(users_svc.url + "/v1/users/me", headers={"authorization": header})
        assert r.status_code == 401, header
        assert r.json()["status"] == 401


def test_user_a_cannot_read_or_change_user_b(users_svc, http, make_user, db):
    a_uid, a = make_user()
    b_uid, b = make_user()
    url = users_svc.url

    # Reads are the caller's own.
    assert http.get(url + "/v1/users/me", headers=a).json()["id"] == a_uid
    assert http.get(url + "/v1/users/me", headers=b).json()["id"] == b_uid
    b_prefs_before = http.get(url + "/v1/users/me/preferences", headers=b).json()

    # A's writes change A only.
    assert http.patch(url + "/v1/users/me", json={"display_name": "Alice"}, headers=a).status_code == 200
    assert (
        http.patch(
            url + "/v1/users/me/preferences", json={"timezone": "Asia/Tokyo", "voice": "a-voice"}, headers=a
        ).status_code
        == 200
    )
    assert http.get(url + "/v1/users/me", headers=b).json()["display_name"] == f"Name {b_uid}"
    assert http.get(url + "/v1/users/me/preferences", headers=b).json() == b_prefs_before
    row = db.execute("SELECT timezone, voice FROM users.preferences WHERE user_id = %s", (b_uid,)).fetchone()
    assert row == (b_prefs_before["timezone"], None)

    # There is no route that takes another user's id, except the admin-only plan change.
    r = http.put(url + f"/v1/users/{b_uid}/plan", json={"plan": "premium"}, headers=a)
    assert r.status_code == 403 and r.json()["code"] == "admin_required"
    assert db.execute("SELECT plan FROM users.users WHERE id = %s", (b_uid,)).fetchone()[0] == "free"

    # A deleting their account leaves B's untouched.
    assert http.delete(url + "/v1/users/me", headers=a).status_code == 204
    assert http.get(url + "/v1/users/me", headers=b).status_code == 200
    assert db.execute("SELECT count(*) FROM users.users WHERE id = %s", (b_uid,)).fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM users.preferences WHERE user_id = %s", (b_uid,)).fetchone()[0] == 1


def test_unprovisioned_user_is_404_with_a_hint(users_svc, http):
    h = auth_headers(new_uid(), "users")
    for path in ("/v1/users/me", "/v1/users/me/preferences"):
        r = http.get(users_svc.url + path, headers=h)
        assert r.status_code == 404
        assert r.json()["code"] == "user_not_found"
        assert "/v1/auth/session" in r.json()["detail"]
    assert http.patch(users_svc.url + "/v1/users/me", json={"display_name": "x"}, headers=h).status_code == 404
    assert http.patch(users_svc.url + "/v1/users/me/preferences", json={"voice": "x"}, headers=h).status_code == 404


@pytest.mark.parametrize("uid", ["u" * 129, "a\x00b", "tab\there"])
def test_token_with_an_unusable_subject_is_401(users_svc, http, uid):
    for method, path, body in ROUTES:
        r = http.request(method, users_svc.url + path, json=body, headers=auth_headers(uid, "users", roles=("admin",)))
        assert r.status_code == 401, (method, path, r.text)
        assert r.json()["code"] == "invalid_internal_token"
