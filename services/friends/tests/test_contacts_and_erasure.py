"""Contact matching (discoverable users only, limits that stop enumeration) and the
user.deleted consumer."""

from __future__ import annotations

import hashlib
import os
import time

from eindr_common import events as ev
from eindr_common.testing import eventually


def sha(identifier: str) -> str:
    return hashlib.sha256(identifier.encode()).hexdigest()


def random_hashes(n: int) -> list[str]:
    return [os.urandom(32).hex() for _ in range(n)]


def phone() -> str:
    # A valid Dutch mobile number (+31 6 1…), unique per test run.
    return "+3161" + str(int.from_bytes(os.urandom(4), "big") % 10**7).zfill(7)


def test_phone_numbers_are_normalised_to_e164_before_hashing(friends):
    """The same number written nationally, with spaces or dashes, registers as one E.164
    identity; an invalid number registers nothing."""
    a = friends(claims={"phone_number": "+31 6-12 34 56 78"})
    assert a.put("/v1/friends/me/discovery", json={"discoverable": True}).json()["identifiers"] == ["phone"]
    r = friends().post("/v1/friends/contacts:match", json={"hashes": [sha("+31612345678")]})
    assert [m["user_id"] for m in r.json()["matches"]] == [a.uid]
    bad = friends(claims={"phone_number": "+31 0000", "email": "not-an-email", "email_verified": True})
    assert bad.put("/v1/friends/me/discovery", json={"discoverable": True}).json()["identifiers"] == []
    for body, field in (({"discoverable": "maybe"}, "discoverable"), ({}, "discoverable"), ({"discoverable": True, "display_name": "\x00"}, "display_name")):
        r = bad.put("/v1/friends/me/discovery", json=body)
        assert r.status_code == 400 and r.json()["errors"][0]["field"] == field


def test_discoverable_users_are_found_by_hash_others_not(friends, db):
    ph_a, ph_b = phone(), phone()
    email_a = f"Alice{os.urandom(3).hex()}@Example.COM"
    a = friends(claims={"phone_number": ph_a, "email": email_a, "email_verified": True, "name": "Alice"})
    b = friends(claims={"phone_number": ph_b, "email": "b@example.com", "email_verified": False})
    searcher = friends()
    r = a.put("/v1/friends/me/discovery", json={"discoverable": True})
    assert r.status_code == 200, r.text
    assert r.json() == {"discoverable": True, "display_name": "Alice", "identifiers": ["email", "phone"]}
    assert b.put("/v1/friends/me/discovery", json={"discoverable": False}).json()["identifiers"] == ["phone"]  # unverified email ignored
    # Only hashes are stored, never the identifiers (nor their plain SHA-256).
    stored = db.execute("SELECT encode(hash, 'hex') FROM friends.identities WHERE user_id = %s", (a.uid,)).fetchall()
    assert len(stored) == 2 and sha(ph_a) not in {s[0] for s in stored}
    assert ph_a not in str(db.execute("SELECT * FROM friends.identities i JOIN friends.directory d USING (user_id) WHERE user_id = %s", (a.uid,)).fetchall())
    hashes = [sha(ph_a), sha(email_a.lower()), sha(ph_b), *random_hashes(10)]
    r = searcher.post("/v1/friends/contacts:match", json={"hashes": hashes})
    assert r.status_code == 200, r.text
    matches = r.json()["matches"]
    assert sorted((m["hash"], m["user_id"]) for m in matches) == sorted([(sha(ph_a), a.uid), (sha(email_a.lower()), a.uid)])
    assert matches[0]["display_name"] == "Alice" and matches[0]["is_friend"] is False
    # Opting out hides at once; blocking hides too.
    a.put("/v1/friends/me/discovery", json={"discoverable": False})
    assert searcher.post("/v1/friends/contacts:match", json={"hashes": [sha(ph_a)]}).json()["matches"] == []
    a.put("/v1/friends/me/discovery", json={"discoverable": True})
    a.post("/v1/friends/blocks", json={"user_id": searcher.uid})
    assert searcher.post("/v1/friends/contacts:match", json={"hashes": [sha(ph_a)]}).json()["matches"] == []
    # Invite by contact hash finds discoverable users only.
    other = friends()
    r = other.post("/v1/friends/invites", json={"contact_hash": sha(ph_a)})
    assert r.status_code == 201 and r.json()["invitee_id"] == a.uid and r.json()["via"] == "contact_hash"
    r = other.post("/v1/friends/invites", json={"contact_hash": sha(ph_b)})
    assert r.status_code == 404 and r.json()["code"] == "contact_not_found"
    assert a.get("/v1/friends/me/discovery").json()["discoverable"] is True


def test_match_refuses_big_batches_bad_hashes_and_enumeration(friends):
    s = friends()
    r = s.post("/v1/friends/contacts:match", json={"hashes": random_hashes(5001)})
    assert r.status_code == 400 and r.json()["code"] == "too_many_hashes" and r.json()["errors"][0]["field"] == "hashes"
    for bad in ("abc", "A" * 64, "0" * 63, "0" * 65, "\x00" * 64):
        r = s.post("/v1/friends/contacts:match", json={"hashes": [os.urandom(32).hex(), bad]})
        assert r.status_code == 400 and r.json()["errors"][0]["field"] == "hashes[1]", (bad, r.text)
    assert s.post("/v1/friends/contacts:match", json={"hashes": []}).status_code == 400
    # The test service allows 6000 hashes a day per user.
    r = s.post("/v1/friends/contacts:match", json={"hashes": random_hashes(5000)})
    assert r.status_code == 200 and r.json()["remaining_today"] == 1000
    r = s.post("/v1/friends/contacts:match", json={"hashes": random_hashes(1001)})
    assert r.status_code == 429 and r.json()["code"] == "contact_match_limit"
    assert int(r.headers["retry-after"]) > 0
    # A refused request spends nothing: what is left can still be used, then no more.
    assert s.post("/v1/friends/contacts:match", json={"hashes": random_hashes(1000)}).status_code == 200
    assert s.post("/v1/friends/contacts:match", json={"hashes": random_hashes(1)}).status_code == 429
    assert s.post("/v1/friends/invites", json={"contact_hash": random_hashes(1)[0]}).status_code == 429


def test_user_deleted_erases_relations_and_tells_friends(friends, befriend, rds, db, events_of):
    a, b, c = friends(claims={"phone_number": phone()}), friends(), friends()
    befriend(a.uid, b.uid, "trusted", "trusted")
    a.put("/v1/friends/me/discovery", json={"discoverable": True})
    a.post("/v1/friends/shares", json={"friend_id": b.uid, "item_type": "note", "item_id": "n1"})
    a.post("/v1/friends/invites", json={"user_id": c.uid})
    a.post("/v1/friends/blocks", json={"user_id": friends().uid})
    assert b.get(f"/internal/friends/{b.uid}/ledger-peers").json()["peers"] == [a.uid]
    rds.xadd(ev.stream_name("users"), {"id": "e1", "type": "user.deleted", "at": "0", "payload": f'{{"uid": "{a.uid}"}}'})

    def gone():
        n = 0
        for table, cols in (("grants", ("owner_id", "friend_id")), ("invites", ("inviter_id", "invitee_id")), ("blocks", ("blocker_id", "blocked_id")),
                            ("shares", ("owner_id", "friend_id")), ("directory", ("user_id", "user_id")), ("identities", ("user_id", "user_id"))):
            n += db.execute(f"SELECT count(*) FROM friends.{table} WHERE {cols[0]} = %s OR {cols[1]} = %s", (a.uid, a.uid)).fetchone()[0]
        return n == 0

    assert eventually(gone)
    assert b.get("/v1/friends").json()["items"] == []
    assert b.get(f"/internal/friends/{b.uid}/ledger-peers").json()["peers"] == []
    assert c.get("/v1/friends/invites").json()["items"] == []
    assert any(p["reason"] == "user_deleted" for _, p in events_of(b.uid, "friend.removed"))
    # Delivered again (at-least-once): nothing breaks.
    rds.xadd(ev.stream_name("users"), {"id": "e2", "type": "user.deleted", "at": "0", "payload": f'{{"uid": "{a.uid}"}}'})
    time.sleep(0.5)
    assert b.get("/v1/friends").json()["items"] == []
