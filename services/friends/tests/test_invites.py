"""Invites (user id, shareable code), accept/decline/cancel, remove, block — through the
real friends process. Every route is tried by a third user (404) and with bad input."""

from __future__ import annotations

import pytest


def test_invite_accept_and_friend_lists(friends, events_of):
    a, b = friends(), friends()
    r = a.post("/v1/friends/invites", json={"user_id": b.uid})
    assert r.status_code == 201, r.text
    inv = r.json()
    assert inv["status"] == "pending" and inv["inviter_id"] == a.uid and inv["invitee_id"] == b.uid and inv["via"] == "user_id"
    assert inv["code"] is None
    assert [i["id"] for i in b.get("/v1/friends/invites", params={"direction": "incoming"}).json()["items"]] == [inv["id"]]
    assert [i["id"] for i in a.get("/v1/friends/invites", params={"direction": "outgoing"}).json()["items"]] == [inv["id"]]
    assert a.get("/v1/friends/invites", params={"direction": "incoming"}).json()["items"] == []
    # Duplicate, reverse and self invites.
    assert a.post("/v1/friends/invites", json={"user_id": b.uid}).json()["code"] == "invite_exists"
    r = b.post("/v1/friends/invites", json={"user_id": a.uid})
    assert r.status_code == 409 and r.json()["code"] == "invite_pending_from_them" and r.json()["invite_id"] == inv["id"]
    r = a.post("/v1/friends/invites", json={"user_id": a.uid})
    assert r.status_code == 400 and r.json()["code"] == "self_invite"
    # Only the invitee accepts.
    assert a.post(f"/v1/friends/invites/{inv['id']}/accept").status_code == 403
    r = b.post(f"/v1/friends/invites/{inv['id']}/accept")
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    assert b.post(f"/v1/friends/invites/{inv['id']}/accept").json()["code"] == "invite_not_pending"
    mine = a.get("/v1/friends").json()["items"]
    assert [(f["user_id"], f["my_tier"], f["their_tier"], f["shares_ledger"]) for f in mine] == [(b.uid, "basic", "basic", False)]
    assert b.get(f"/v1/friends/{a.uid}").json()["user_id"] == a.uid
    assert a.post("/v1/friends/invites", json={"user_id": b.uid}).json()["code"] == "already_friends"
    assert events_of(a.uid, "friend.accepted")


def test_decline_cancel_and_third_party_404(friends):
    a, b, c = friends(), friends(), friends()
    inv = a.post("/v1/friends/invites", json={"user_id": b.uid}).json()
    for direction in ("incoming", "outgoing"):
        assert c.get("/v1/friends/invites", params={"direction": direction}).json()["items"] == []
    for action in ("accept", "decline", "cancel"):
        r = c.post(f"/v1/friends/invites/{inv['id']}/{action}")
        assert r.status_code == 404 and r.json()["code"] == "invite_not_found"
    assert b.post(f"/v1/friends/invites/{inv['id']}/cancel").status_code == 403
    assert a.post(f"/v1/friends/invites/{inv['id']}/decline").status_code == 403
    r = b.post(f"/v1/friends/invites/{inv['id']}/decline")
    assert r.status_code == 200 and r.json()["status"] == "declined"
    assert a.get("/v1/friends").json()["items"] == []
    inv2 = a.post("/v1/friends/invites", json={"user_id": b.uid}).json()
    assert a.post(f"/v1/friends/invites/{inv2['id']}/cancel").json()["status"] == "cancelled"
    assert b.post(f"/v1/friends/invites/{inv2['id']}/accept").json()["code"] == "invite_not_pending"
    for path in ("/v1/friends/invites/not-a-uuid/accept", "/v1/friends/invites/00000000-0000-0000-0000-000000000000/decline"):
        assert b.post(path).status_code == 404


def test_expired_invite_cannot_be_accepted(friends, db):
    a, b = friends(), friends()
    inv = a.post("/v1/friends/invites", json={"user_id": b.uid}).json()
    db.execute("UPDATE friends.invites SET expires_at = now() - interval '1 second' WHERE id = %s", (inv["id"],))
    r = b.post(f"/v1/friends/invites/{inv['id']}/accept")
    assert r.status_code == 409 and r.json()["code"] == "invite_expired"
    # An expired invite does not block a new one.
    assert a.post("/v1/friends/invites", json={"user_id": b.uid}).status_code == 201


def test_shareable_code_single_use_and_expiring(friends, db):
    a, b, c = friends(), friends(), friends()
    r = a.post("/v1/friends/invites", json={"shareable": True, "expires_in_s": 3600})
    assert r.status_code == 201, r.text
    inv = r.json()
    code = inv["code"]
    assert len(code) == 12 and inv["link"].endswith(code) and inv["via"] == "code"
    assert db.execute("SELECT count(*) FROM friends.invites WHERE code_hash IS NOT NULL AND encode(code_hash, 'escape') LIKE %s", (f"%{code}%",)).fetchone()[0] == 0
    assert a.post("/v1/friends/invites/redeem", json={"code": code}).json()["code"] == "self_invite"
    r = b.post("/v1/friends/invites/redeem", json={"code": code.lower()[:4] + "-" + code[4:]})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "accepted" and r.json()["invitee_id"] == b.uid
    r = c.post("/v1/friends/invites/redeem", json={"code": code})
    assert r.status_code == 409 and r.json()["code"] == "invite_used"
    assert [f["user_id"] for f in a.get("/v1/friends").json()["items"]] == [b.uid]
    expiring = a.post("/v1/friends/invites", json={"shareable": True}).json()
    db.execute("UPDATE friends.invites SET expires_at = now() - interval '1 second' WHERE id = %s", (expiring["id"],))
    r = c.post("/v1/friends/invites/redeem", json={"code": expiring["code"]})
    assert r.status_code == 409 and r.json()["code"] == "invite_expired"
    assert c.post("/v1/friends/invites/redeem", json={"code": "ABCDEFGHJKLM"}).status_code == 404
    for bad in ("short", "0" * 12, "a\x00b", "x" * 1000):
        r = c.post("/v1/friends/invites/redeem", json={"code": bad})
        assert r.status_code == 400 and r.json()["errors"][0]["field"] == "code", (bad, r.text)


def test_concurrent_redemptions_of_one_code_make_one_friend(friends_svc, friends):
    import asyncio

    import httpx
    from eindr_common.testing import auth_headers, new_uid

    a = friends()
    code = a.post("/v1/friends/invites", json={"shareable": True}).json()["code"]
    uids = [new_uid() for _ in range(10)]

    async def run():
        async with httpx.AsyncClient(base_url=friends_svc.url, timeout=30) as client:
            return await asyncio.gather(*(client.post("/v1/friends/invites/redeem", json={"code": code}, headers=auth_headers(u, "friends")) for u in uids))

    codes = sorted(r.status_code for r in asyncio.run(run()))
    assert codes == [200] + [409] * 9
    assert len(a.get("/v1/friends").json()["items"]) == 1


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "body"),
        ({"user_id": "x", "shareable": True}, "body"),
        ({"user_id": ""}, "user_id"),
        ({"user_id": "a\x00b"}, "user_id"),
        ({"user_id": "u" * 129}, "user_id"),
        ({"user_id": "u" * 1_000_000}, "user_id"),
        ({"contact_hash": "abc"}, "contact_hash"),
        ({"contact_hash": "G" * 64}, "contact_hash"),
        ({"shareable": True, "expires_in_s": 10}, "expires_in_s"),
        ({"shareable": True, "expires_in_s": 10**9}, "expires_in_s"),
        ({"user_id": "x", "extra": 1}, "extra"),
    ],
)
def test_bad_invites_are_400_and_nothing_stored(friends, db, body, field):
    a = friends()
    r = a.post("/v1/friends/invites", json=body)
    assert r.status_code == 400, r.text
    assert field in {e["field"] for e in r.json()["errors"]}
    assert "\x00" not in r.text and len(r.text) < 5000
    assert db.execute("SELECT count(*) FROM friends.invites WHERE inviter_id = %s", (a.uid,)).fetchone()[0] == 0


def test_remove_friend(friends, befriend, events_of):
    a, b, c = friends(), friends(), friends()
    befriend(a.uid, b.uid)
    assert c.delete(f"/v1/friends/{a.uid}").status_code == 404
    assert c.get(f"/v1/friends/{a.uid}").status_code == 404
    assert c.put(f"/v1/friends/{a.uid}/permissions", json={"tier": "trusted"}).status_code == 404
    assert b.delete(f"/v1/friends/{a.uid}").status_code == 204
    assert a.get("/v1/friends").json()["items"] == [] and b.get("/v1/friends").json()["items"] == []
    assert a.get(f"/v1/friends/{b.uid}").status_code == 404
    assert b.delete(f"/v1/friends/{a.uid}").status_code == 404
    assert events_of(a.uid, "friend.removed")


def test_block_ends_everything_and_keeps_the_blocked_out(friends, befriend):
    a, b = friends(), friends()
    befriend(a.uid, b.uid, "trusted", "trusted")
    share = a.post("/v1/friends/shares", json={"friend_id": b.uid, "item_type": "note", "item_id": "n1"}).json()
    code = a.post("/v1/friends/invites", json={"shareable": True}).json()["code"]
    r = a.post("/v1/friends/blocks", json={"user_id": b.uid})
    assert r.status_code == 201 and r.json()["user_id"] == b.uid
    assert a.get("/v1/friends").json()["items"] == [] and b.get("/v1/friends").json()["items"] == []
    assert b.get(f"/v1/friends/shares/{share['id']}").status_code == 404
    assert b.get("/v1/friends/shares", params={"direction": "incoming"}).json()["items"] == []
    # The blocked one cannot invite, redeem the blocker's code, or see the blocker.
    r = b.post("/v1/friends/invites", json={"user_id": a.uid})
    assert r.status_code == 403 and r.json()["code"] == "cannot_invite" and "block" not in r.text.lower()
    assert b.post("/v1/friends/invites/redeem", json={"code": code}).status_code == 403
    assert b.get(f"/v1/friends/{a.uid}").status_code == 404
    perm = b.get(f"/internal/friends/{a.uid}/permissions/{b.uid}").json()
    assert perm["friends"] is False and perm["blocked"] is True and perm["tier"] is None
    # The blocker is told to unblock first.
    assert a.post("/v1/friends/invites", json={"user_id": b.uid}).json()["code"] == "user_blocked"
    assert [x["user_id"] for x in a.get("/v1/friends/blocks").json()] == [b.uid]
    assert a.post("/v1/friends/blocks", json={"user_id": a.uid}).status_code == 400
    # A pending invite from the blocked one disappears from the blocker's inbox.
    c = friends()
    c.post("/v1/friends/invites", json={"user_id": a.uid})
    a.post("/v1/friends/blocks", json={"user_id": c.uid})
    assert a.get("/v1/friends/invites", params={"direction": "incoming"}).json()["items"] == []
    # Unblocking does not restore the friendship, but allows inviting again.
    assert b.delete(f"/v1/friends/blocks/{a.uid}").status_code == 404
    assert a.delete(f"/v1/friends/blocks/{b.uid}").status_code == 204
    assert a.get("/v1/friends").json()["items"] == []
    assert b.post("/v1/friends/invites", json={"user_id": a.uid}).status_code == 201


def test_friend_list_pages_and_idempotent_invite(friends, befriend):
    from eindr_common.testing import new_uid

    me = friends()
    others = [friends() for _ in range(5)]
    for o in others:
        befriend(me.uid, o.uid)
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = me.get("/v1/friends", params=params).json()
        seen += [f["user_id"] for f in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(o.uid for o in others)
    target = friends()
    h = {"Idempotency-Key": "inv-" + new_uid()}
    a = me.post("/v1/friends/invites", json={"user_id": target.uid}, headers=h)
    b = me.post("/v1/friends/invites", json={"user_id": target.uid}, headers=h)
    assert a.status_code == b.status_code == 201 and a.json()["id"] == b.json()["id"]
    assert len(target.get("/v1/friends/invites").json()["items"]) == 1


@pytest.mark.parametrize("body", [{}, {"user_id": ""}, {"user_id": "a\x00b"}, {"user_id": "u" * 129}, {"user_id": "x", "why": "spam"}])
def test_bad_block_bodies_are_400(friends, db, body):
    a = friends()
    r = a.post("/v1/friends/blocks", json=body)
    assert r.status_code == 400 and r.json()["errors"]
    assert db.execute("SELECT count(*) FROM friends.blocks WHERE blocker_id = %s", (a.uid,)).fetchone()[0] == 0


def test_settings_refuse_the_development_pepper_outside_development():
    from eindr_common.testing import TEST_SECRET
    from eindr_friends.settings import FriendsSettings

    with pytest.raises(ValueError):
        FriendsSettings(env="production", internal_token_secret=TEST_SECRET)
    with pytest.raises(ValueError):
        FriendsSettings(env="test", internal_token_secret=TEST_SECRET, friends_hash_pepper="short")
    assert FriendsSettings(env="test", internal_token_secret=TEST_SECRET, friends_hash_pepper="p" * 32).friends_match_max_batch == 5000
