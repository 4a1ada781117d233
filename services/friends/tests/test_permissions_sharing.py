"""Two-tier permissions per direction, effective at once (through the cached internal
endpoint); sharing reminders/notes with friends; the internal API other services call."""

from __future__ import annotations

import pytest
from eindr_common.testing import auth_headers


def perm(client, owner: str, viewer: str, **params) -> dict:
    r = client.get(f"/internal/friends/{owner}/permissions/{viewer}", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_tiers_per_direction_take_effect_at_once(friends, befriend, events_of):
    a, b = friends(), friends()
    befriend(a.uid, b.uid)
    # Warm the cache on both sides, then change tiers: the very next answer follows.
    p = perm(b, a.uid, b.uid)
    assert (p["friends"], p["tier"], p["reverse_tier"], p["can_create_reminders"], p["shares_ledger"]) == (True, "basic", "basic", False, False)
    assert b.get(f"/internal/friends/{b.uid}/ledger-peers").json()["peers"] == []
    r = a.put(f"/v1/friends/{b.uid}/permissions", json={"tier": "trusted"})
    assert r.status_code == 200 and r.json()["my_tier"] == "trusted" and r.json()["their_tier"] == "basic"
    p = perm(b, a.uid, b.uid)
    assert p["tier"] == "trusted" and p["can_create_reminders"] is True and p["shares_ledger"] is False
    # B has not granted A anything beyond basic: A may not create reminders for B.
    assert perm(a, b.uid, a.uid)["can_create_reminders"] is False
    assert b.get(f"/internal/friends/{b.uid}/ledger-peers").json()["peers"] == []
    b.put(f"/v1/friends/{a.uid}/permissions", json={"tier": "trusted"})
    assert perm(a, b.uid, a.uid)["shares_ledger"] is True
    assert b.get(f"/internal/friends/{b.uid}/ledger-peers").json()["peers"] == [a.uid]
    assert a.get(f"/internal/friends/{a.uid}/ledger-peers").json()["peers"] == [b.uid]
    assert a.get(f"/v1/friends/{b.uid}").json()["shares_ledger"] is True
    # Downgrade: gone in the next answer, for both sides.
    a.put(f"/v1/friends/{b.uid}/permissions", json={"tier": "basic"})
    p = perm(b, a.uid, b.uid)
    assert p["tier"] == "basic" and p["can_create_reminders"] is False and p["shares_ledger"] is False
    assert b.get(f"/internal/friends/{b.uid}/ledger-peers").json()["peers"] == []
    assert a.get(f"/internal/friends/{a.uid}/ledger-peers").json()["peers"] == []
    changes = [p for t, p in events_of(a.uid, "permission.changed") if p["owner_id"] == a.uid]
    assert [c["tier"] for c in changes] == ["trusted", "basic"]
    # Removing the friendship ends everything at once too.
    b.put(f"/v1/friends/{a.uid}/permissions", json={"tier": "trusted"})
    a.put(f"/v1/friends/{b.uid}/permissions", json={"tier": "trusted"})
    assert b.get(f"/internal/friends/{b.uid}/ledger-peers").json()["peers"] == [a.uid]
    a.delete(f"/v1/friends/{b.uid}")
    assert b.get(f"/internal/friends/{b.uid}/ledger-peers").json()["peers"] == []
    assert perm(b, a.uid, b.uid)["friends"] is False


@pytest.mark.parametrize("body", [{"tier": "admin"}, {"tier": None}, {}, {"tier": "trusted", "x": 1}, {"tier": "basic\x00"}])
def test_bad_tier_is_400(friends, befriend, body):
    a, b = friends(), friends()
    befriend(a.uid, b.uid)
    r = a.put(f"/v1/friends/{b.uid}/permissions", json=body)
    assert r.status_code == 400
    assert a.get(f"/v1/friends/{b.uid}").json()["my_tier"] == "basic"


def test_share_with_friends_only_view_edit_revoke(friends, befriend, events_of):
    a, b, c = friends(), friends(), friends()
    r = a.post("/v1/friends/shares", json={"friend_id": b.uid, "item_type": "note", "item_id": "note-1"})
    assert r.status_code == 403 and r.json()["code"] == "not_friends"
    befriend(a.uid, b.uid)
    r = a.post("/v1/friends/shares", json={"friend_id": b.uid, "item_type": "note", "item_id": "note-1"})
    assert r.status_code == 201, r.text
    s = r.json()
    assert s["access"] == "view" and s["owner_id"] == a.uid and s["friend_id"] == b.uid
    r2 = a.post("/v1/friends/shares", json={"friend_id": b.uid, "item_type": "note", "item_id": "note-1", "access": "edit"})
    assert r2.status_code == 200 and r2.json()["id"] == s["id"] and r2.json()["access"] == "edit"
    a.post("/v1/friends/shares", json={"friend_id": b.uid, "item_type": "reminder", "item_id": "rem-1"})
    assert {x["item_id"] for x in a.get("/v1/friends/shares").json()["items"]} == {"note-1", "rem-1"}
    incoming = b.get("/v1/friends/shares", params={"direction": "incoming", "item_type": "note"}).json()["items"]
    assert [(x["item_id"], x["access"]) for x in incoming] == [("note-1", "edit")]
    internal = b.get(f"/internal/friends/{b.uid}/shared-with-me", params={"item_type": "note"}).json()["items"]
    assert [(x["owner_id"], x["item_id"], x["access"]) for x in internal] == [(a.uid, "note-1", "edit")]
    assert perm(b, a.uid, b.uid, item_type="note", item_id="note-1")["item_access"] == "edit"
    assert perm(b, a.uid, b.uid, item_type="note", item_id="note-2")["item_access"] is None
    # Access changes and revocation show at once (the item answer is cached too).
    assert a.patch(f"/v1/friends/shares/{s['id']}", json={"access": "view"}).json()["access"] == "view"
    assert perm(b, a.uid, b.uid, item_type="note", item_id="note-1")["item_access"] == "view"
    # Only the owner changes or revokes; a third user sees nothing.
    assert b.patch(f"/v1/friends/shares/{s['id']}", json={"access": "edit"}).status_code == 404
    assert b.delete(f"/v1/friends/shares/{s['id']}").status_code == 404
    assert b.get(f"/v1/friends/shares/{s['id']}").status_code == 200
    for method in ("GET", "PATCH", "DELETE"):
        r = c(method, f"/v1/friends/shares/{s['id']}", json={"access": "edit"} if method == "PATCH" else None)
        assert r.status_code == 404, (method, r.text)
    assert c.get("/v1/friends/shares", params={"direction": "incoming"}).json()["items"] == []
    assert a.delete(f"/v1/friends/shares/{s['id']}").status_code == 204
    assert perm(b, a.uid, b.uid, item_type="note", item_id="note-1")["item_access"] is None
    assert [x["item_id"] for x in b.get("/v1/friends/shares", params={"direction": "incoming"}).json()["items"]] == ["rem-1"]
    assert events_of(a.uid, "share.revoked")
    # Self-share and bad bodies.
    assert a.post("/v1/friends/shares", json={"friend_id": a.uid, "item_type": "note", "item_id": "x"}).status_code == 400
    for bad, field in (({"item_type": "photo"}, "item_type"), ({"access": "own"}, "access"), ({"item_id": ""}, "item_id"), ({"item_id": "\x00"}, "item_id"), ({"item_id": "i" * 129}, "item_id")):
        body = {"friend_id": b.uid, "item_type": "note", "item_id": "n", **bad}
        r = a.post("/v1/friends/shares", json=body)
        assert r.status_code == 400 and field in {e["field"] for e in r.json()["errors"]}, (bad, r.text)


def test_removing_a_friend_hides_their_shares_immediately(friends, befriend):
    a, b = friends(), friends()
    befriend(a.uid, b.uid)
    a.post("/v1/friends/shares", json={"friend_id": b.uid, "item_type": "reminder", "item_id": "r1", "access": "edit"})
    assert perm(b, a.uid, b.uid, item_type="reminder", item_id="r1")["item_access"] == "edit"
    b.delete(f"/v1/friends/{a.uid}")
    assert perm(b, a.uid, b.uid, item_type="reminder", item_id="r1")["item_access"] is None
    assert b.get(f"/internal/friends/{b.uid}/shared-with-me").json()["items"] == []
    assert a.get("/v1/friends/shares").json()["items"] == []


def test_internal_endpoints_answer_only_parties_and_only_internal_tokens(friends, friends_svc, http):
    a, b, c = friends(), friends(), friends()
    for path in (f"/internal/friends/{a.uid}/permissions/{b.uid}", f"/internal/friends/{a.uid}/ledger-peers", f"/internal/friends/{a.uid}/shared-with-me"):
        r = c.get(path)
        assert r.status_code == 403 and r.json()["code"] == "not_a_party", path
        assert http.get(friends_svc.url + path).status_code == 401
        assert http.get(friends_svc.url + path, headers=auth_headers(a.uid, "ledger")).status_code == 401
    r = a.get(f"/internal/friends/{a.uid}/permissions/{b.uid}", params={"item_type": "photo", "item_id": "x"})
    assert r.status_code == 400


def test_health_readiness_and_domain_metrics(friends_svc, friends, befriend, http):
    a, b = friends(), friends()
    befriend(a.uid, b.uid)
    perm(b, a.uid, b.uid)
    perm(b, a.uid, b.uid)
    assert http.get(friends_svc.url + "/readyz").json()["status"] == "ok"
    text = http.get(friends_svc.url + "/metrics").text
    assert 'eindr_friends_permission_cache_total{result="hit"}' in text
    assert 'eindr_friends_invites_total{via="user_id"}' in text
    assert "eindr_friends_friendships_total" in text
