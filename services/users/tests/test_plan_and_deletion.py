"""Admin plan changes and account deletion."""

from __future__ import annotations

from eindr_common.identity import plan_key
from eindr_common.testing import auth_headers, new_uid


def admin() -> dict[str, str]:
    return auth_headers("admin-" + new_uid(), "users", roles=("admin",))


def test_plan_change_requires_admin_and_updates_db_and_redis(users_svc, http, make_user, db, rds, events_of):
    uid, h = make_user()
    url = users_svc.url + f"/v1/users/{uid}/plan"
    r = http.put(url, json={"plan": "premium"}, headers=h)  # the user themself, not admin
    assert r.status_code == 403 and r.json()["code"] == "admin_required"
    assert rds.get(plan_key(uid)) == "free"

    admin_headers = admin()
    r = http.put(url, json={"plan": "premium"}, headers={**admin_headers, "x-request-id": "req-plan-1"})
    assert r.status_code == 200 and r.json() == {"id": uid, "plan": "premium"}
    assert rds.get(plan_key(uid)) == "premium"
    assert db.execute("SELECT plan FROM users.users WHERE id = %s", (uid,)).fetchone()[0] == "premium"
    assert http.get(users_svc.url + "/v1/users/me", headers=h).json()["plan"] == "premium"
    assert [e["payload"] for e in events_of(uid, "user.plan_changed")] == [
        {"uid": uid, "old_plan": "free", "new_plan": "premium"}
    ]
    row = db.execute(
        "SELECT actor, action, detail, request_id FROM users.audit_log WHERE subject = %s AND action = 'plan.changed'",
        (uid,),
    ).fetchone()
    assert row[1:] == ("plan.changed", {"old": "free", "new": "premium"}, "req-plan-1")
    assert row[0].startswith("admin-")

    # A repeated PUT is harmless and repairs a lost key.
    rds.delete(plan_key(uid))
    assert http.put(url, json={"plan": "premium"}, headers=admin_headers).status_code == 200
    assert rds.get(plan_key(uid)) == "premium"
    assert len(events_of(uid, "user.plan_changed")) == 1


def test_plan_change_validation(users_svc, http):
    h = admin()
    assert (
        http.put(users_svc.url + f"/v1/users/{new_uid()}/plan", json={"plan": "premium"}, headers=h).status_code == 404
    )
    r = http.put(users_svc.url + "/v1/users/x/plan", json={"plan": "gold"}, headers=h)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "plan"
    r = http.put(users_svc.url + "/v1/users/" + "u" * 129 + "/plan", json={"plan": "free"}, headers=h)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "uid"
    r = http.put(users_svc.url + "/v1/users/a%00b/plan", json={"plan": "free"}, headers=h)
    assert r.status_code == 400


def test_account_deletion_removes_rows_and_publishes_user_deleted(users_svc, http, make_user, db, rds, events_of):
    uid, h = make_user()
    http.patch(users_svc.url + "/v1/users/me", json={"display_name": "Soon gone"}, headers=h)
    http.get(users_svc.url + "/v1/users/me", headers=h)  # fill the cache
    r = http.delete(users_svc.url + "/v1/users/me", headers=h)
    assert r.status_code == 204 and r.content == b""
    assert db.execute("SELECT count(*) FROM users.users WHERE id = %s", (uid,)).fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM users.preferences WHERE user_id = %s", (uid,)).fetchone()[0] == 0
    # The user's own audit trail is erased; one tombstone records the deletion.
    actions = db.execute("SELECT action FROM users.audit_log WHERE subject = %s", (uid,)).fetchall()
    assert actions == [("user.deleted",)]
    assert rds.get(plan_key(uid)) is None
    assert rds.get(f"eindr:users:cache:profile:{uid}") is None
    deleted = [e["payload"] for e in events_of(uid, "user.deleted")]
    assert len(deleted) == 1 and deleted[0]["uid"] == uid and isinstance(deleted[0]["deleted_at"], int)
    assert http.get(users_svc.url + "/v1/users/me", headers=h).status_code == 404
    # Deleting again is harmless (the event is emitted again; consumers are idempotent).
    assert http.delete(users_svc.url + "/v1/users/me", headers=h).status_code == 204
    assert len(events_of(uid, "user.deleted")) == 2
    # A later login starts a fresh account.
    assert http.post(users_svc.url + "/internal/users/provision", headers=h).status_code == 201
