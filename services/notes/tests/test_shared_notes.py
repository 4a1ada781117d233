"""Notes a friend shares through the real friends service: listed, found and read by the
friend with the sharer's identity; changed by the friend only with ``edit`` access (never
deleted, never shared further); gone or read-only again from the very next request after a
revocation, an access downgrade, an unfriending or a block; invisible to everyone else."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from eindr_common.testing import auth_headers, new_uid


class Friends:
    """The real friends service, driven as its users would."""

    def __init__(self, client: httpx.Client, url: str) -> None:
        self.client, self.url = client, url

    def befriend(self, a: str, b: str) -> None:
        r = self.client.post(self.url + "/v1/friends/invites", json={"user_id": b}, headers=auth_headers(a, "friends"))
        assert r.status_code == 201, r.text
        r = self.client.post(f"{self.url}/v1/friends/invites/{r.json()['id']}/accept", headers=auth_headers(b, "friends"))
        assert r.status_code == 200, r.text

    def share(self, owner: str, friend: str, note_id: str, access: str = "view") -> str:
        r = self.client.post(self.url + "/v1/friends/shares", headers=auth_headers(owner, "friends"),
                             json={"friend_id": friend, "item_type": "note", "item_id": note_id, "access": access})
        assert r.status_code in (200, 201), r.text
        return r.json()["id"]

    def set_access(self, owner: str, share_id: str, access: str) -> None:
        r = self.client.patch(f"{self.url}/v1/friends/shares/{share_id}", json={"access": access}, headers=auth_headers(owner, "friends"))
        assert r.status_code == 200, r.text

    def revoke(self, owner: str, share_id: str) -> None:
        assert self.client.delete(f"{self.url}/v1/friends/shares/{share_id}", headers=auth_headers(owner, "friends")).status_code == 204

    def set_tier(self, owner: str, friend: str, tier: str) -> None:
        r = self.client.put(f"{self.url}/v1/friends/{friend}/permissions", json={"tier": tier}, headers=auth_headers(owner, "friends"))
        assert r.status_code == 200, r.text

    def unfriend(self, a: str, b: str) -> None:
        assert self.client.delete(f"{self.url}/v1/friends/{b}", headers=auth_headers(a, "friends")).status_code == 204

    def block(self, a: str, b: str) -> None:
        r = self.client.post(self.url + "/v1/friends/blocks", json={"user_id": b}, headers=auth_headers(a, "friends"))
        assert r.status_code == 201, r.text


class Notes:
    """The real notes API, one user at a time."""

    def __init__(self, client: httpx.Client, url: str) -> None:
        self.client, self.url = client, url

    def create(self, uid: str, **body) -> dict:
        r = self.client.post(self.url + "/v1/notes", json=body, headers=auth_headers(uid, "notes"))
        assert r.status_code == 201, r.text
        return r.json()

    def items(self, uid: str, **params) -> list[dict]:
        r = self.client.get(self.url + "/v1/notes", params=params, headers=auth_headers(uid, "notes"))
        assert r.status_code == 200, r.text
        return r.json()["items"]

    def ids(self, uid: str, **params) -> list[str]:
        return [n["id"] for n in self.items(uid, **params)]

    def search(self, uid: str, q: str) -> list[dict]:
        r = self.client.get(self.url + "/v1/notes/search", params={"q": q}, headers=auth_headers(uid, "notes"))
        assert r.status_code == 200, r.text
        return [hit["note"] for hit in r.json()["items"]]

    def get(self, uid: str, note_id: str) -> httpx.Response:
        return self.client.get(f"{self.url}/v1/notes/{note_id}", headers=auth_headers(uid, "notes"))

    def patch(self, uid: str, note_id: str, body: dict) -> httpx.Response:
        return self.client.patch(f"{self.url}/v1/notes/{note_id}", json=body, headers=auth_headers(uid, "notes"))

    def delete(self, uid: str, note_id: str) -> httpx.Response:
        return self.client.delete(f"{self.url}/v1/notes/{note_id}", headers=auth_headers(uid, "notes"))

    def retry(self, uid: str, note_id: str) -> httpx.Response:
        return self.client.post(f"{self.url}/v1/notes/{note_id}/retry", headers=auth_headers(uid, "notes"))

    def sees_nothing_of(self, uid: str, note_id: str, query: str) -> bool:
        """``uid`` gets 404 for the id on every route and finds it nowhere."""
        codes = {self.get(uid, note_id).status_code, self.patch(uid, note_id, {"title": "x"}).status_code,
                 self.delete(uid, note_id).status_code, self.retry(uid, note_id).status_code}
        return codes == {404} and note_id not in self.ids(uid) and note_id not in [n["id"] for n in self.search(uid, query)]


@pytest.fixture
def friends(client, friends_svc) -> Friends:
    return Friends(client, friends_svc.url)


@pytest.fixture
def notes(client, notes_api) -> Notes:
    return Notes(client, notes_api.url)


def _problem(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json" and r.json()["code"] == code, r.text


def test_view_share_is_listed_found_and_read_only(notes, friends, notes_worker, poll):
    alice, bob, carol = new_uid(), new_uid(), new_uid()
    friends.befriend(alice, bob)
    note = notes.create(alice, text="The boat keys are in the blue tin in the shed", tags=["boat"])
    nid = note["id"]
    poll(lambda: notes.get(alice, nid).json(), lambda n: n["indexed"])
    own = notes.create(bob, text="Dentist on Friday at nine")

    assert notes.ids(bob) == [own["id"]]
    assert notes.sees_nothing_of(bob, nid, "where are the boat keys")

    share_id = friends.share(alice, bob, nid, "view")
    # Listed with the sharer and the access, in creation order among Bob's own notes.
    listed = {n["id"]: n for n in notes.items(bob)}
    assert list(listed) == [own["id"], nid]
    assert (listed[nid]["shared_by"], listed[nid]["access"]) == (alice, "view")
    assert (listed[own["id"]]["shared_by"], listed[own["id"]]["access"]) == (None, "owner")
    assert notes.ids(bob, scope="own") == [own["id"]]
    assert notes.ids(bob, scope="shared") == [nid]
    assert notes.ids(bob, scope="shared", tag="boat") == [nid] and notes.ids(bob, tag="none") == []
    r = notes.client.get(notes.url + "/v1/notes", params={"scope": "everything"}, headers=auth_headers(bob, "notes"))
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "scope"
    # Found by meaning and read by id, as the sharer's.
    found = notes.search(bob, "where are the boat keys")
    assert [n["id"] for n in found] == [nid] and (found[0]["shared_by"], found[0]["access"]) == (alice, "view")
    got = notes.get(bob, nid)
    assert got.status_code == 200 and got.json()["shared_by"] == alice and got.json()["access"] == "view"
    assert got.json()["text"].startswith("The boat keys")
    # Read-only: no change, no deletion, no re-transcription; the note is untouched.
    _problem(notes.patch(bob, nid, {"title": "mine"}), 403, "note_read_only")
    _problem(notes.delete(bob, nid), 403, "note_owner_only")
    _problem(notes.retry(bob, nid), 403, "note_owner_only")
    mine = notes.get(alice, nid).json()
    assert (mine["title"], mine["shared_by"], mine["access"]) == (None, None, "owner")
    assert notes.ids(alice, scope="shared") == []
    # A third user sees nothing of it anywhere.
    assert notes.ids(carol) == [] and notes.sees_nothing_of(carol, nid, "boat keys")

    # Revoked: gone from the list, the search and the id at once.
    friends.revoke(alice, share_id)
    assert notes.ids(bob) == [own["id"]]
    assert notes.sees_nothing_of(bob, nid, "where are the boat keys")
    assert notes.get(alice, nid).status_code == 200
    assert httpx.get(f"{notes.url}/v1/notes/{nid}").status_code == 401


def test_edit_share_changes_title_text_tags_but_never_deletes_or_reshares(notes, friends, rds):
    alice, bob, carol = new_uid(), new_uid(), new_uid()
    friends.befriend(alice, bob)
    friends.befriend(bob, carol)
    nid = notes.create(alice, text="Packing list: tent, stove", tags=["trip"])["id"]
    share_id = friends.share(alice, bob, nid, "edit")
    assert [(n["id"], n["access"]) for n in notes.items(bob, scope="shared")] == [(nid, "edit")]

    r = notes.patch(bob, nid, {"title": "Camping", "text": "Packing list: tent, stove, zq4411 lantern", "tags": ["Trip", "camping"]})
    assert r.status_code == 200, r.text
    edited = r.json()
    assert (edited["title"], edited["tags"], edited["shared_by"], edited["access"]) == ("Camping", ["trip", "camping"], alice, "edit")
    # Still Alice's note, with Bob's change, found by its new words by both.
    mine = notes.get(alice, nid).json()
    assert (mine["title"], mine["text"], mine["tags"], mine["access"]) == ("Camping", "Packing list: tent, stove, zq4411 lantern",
                                                                          ["trip", "camping"], "owner")
    assert [n["id"] for n in notes.search(alice, "zq4411")] == [nid]
    assert [(n["id"], n["access"]) for n in notes.search(bob, "zq4411")] == [(nid, "edit")]
    # The event is the owner's; the audit line names who did it.
    updates = [json.loads(f["payload"]) for _, f in rds.xrange("eindr:events:notes") if f["type"] == "note.updated"]
    assert {"uid": alice, "note_id": nid, "fields": ["tags", "text", "title"], "by": bob} in updates
    trail = [f for _, f in rds.xrange("eindr:audit") if f["service"] == "notes" and f["resource_id"] == nid]
    assert [(f["action"], f["actor_uid"], f["subject_uid"]) for f in trail] == [("note.created", alice, alice), ("note.updated", bob, alice)]
    # Bad input from the editor is a 400 naming the field, as for the owner.
    r = notes.patch(bob, nid, {"title": "a\x00b"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "title"

    # Edit is not ownership: no deletion, no re-transcription.
    _problem(notes.delete(bob, nid), 403, "note_owner_only")
    _problem(notes.retry(bob, nid), 403, "note_owner_only")
    assert notes.get(alice, nid).status_code == 200
    # Nor sharing further: friends accepts Bob's share of an id, notes honours only the owner's.
    friends.share(bob, carol, nid, "edit")
    assert notes.ids(carol) == [] and notes.sees_nothing_of(carol, nid, "zq4411")
    assert notes.get(alice, nid).json()["title"] == "Camping"

    # Downgraded to view: read-only from the next request; upgraded again: editable.
    friends.set_access(alice, share_id, "view")
    _problem(notes.patch(bob, nid, {"title": "Camping trip"}), 403, "note_read_only")
    assert [(n["id"], n["access"]) for n in notes.items(bob)] == [(nid, "view")]
    friends.set_access(alice, share_id, "edit")
    assert notes.patch(bob, nid, {"title": "Camping trip"}).json()["title"] == "Camping trip"


def test_unfriending_and_blocking_end_sharing_at_once(notes, friends):
    alice, bob = new_uid(), new_uid()
    friends.befriend(alice, bob)
    nid = notes.create(alice, text="Gate code for the allotment: 2580")["id"]
    friends.share(alice, bob, nid, "edit")
    assert notes.ids(bob) == [nid]
    # Tiers do not gate explicit shares (basic = "see what I explicitly share with them").
    friends.set_tier(alice, bob, "trusted")
    friends.set_tier(alice, bob, "basic")
    assert notes.patch(bob, nid, {"title": "Allotment"}).status_code == 200

    friends.unfriend(alice, bob)
    assert notes.ids(bob) == [] and notes.sees_nothing_of(bob, nid, "allotment gate code")

    # Friends again: the old share ended with the friendship; a new one works until a block.
    friends.befriend(bob, alice)
    assert notes.ids(bob) == []
    friends.share(alice, bob, nid, "view")
    assert notes.ids(bob) == [nid] and notes.get(bob, nid).status_code == 200
    friends.block(alice, bob)
    assert notes.ids(bob) == [] and notes.sees_nothing_of(bob, nid, "allotment gate code")
    assert notes.get(alice, nid).json()["title"] == "Allotment"


def test_list_pages_through_own_and_shared_notes_in_one_order(notes, friends):
    alice, bob = new_uid(), new_uid()
    friends.befriend(alice, bob)
    a1 = notes.create(alice, text="a1", tags=["x"])["id"]
    b1 = notes.create(bob, text="b1")["id"]
    a2 = notes.create(alice, text="a2", tags=["x"])["id"]
    b2 = notes.create(bob, text="b2", tags=["x"])["id"]
    a3 = notes.create(alice, text="a3 (not shared)")["id"]
    friends.share(alice, bob, a1)
    friends.share(alice, bob, a2.upper(), "edit")  # friends keeps ids as typed; notes compares UUIDs
    # Shares that grant nothing: Alice "sharing" Bob's own note, or an id that is no note.
    friends.share(alice, bob, b1)
    friends.share(alice, bob, str(uuid.uuid4()))

    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        r = notes.client.get(notes.url + "/v1/notes", params=params, headers=auth_headers(bob, "notes"))
        assert r.status_code == 200, r.text
        seen += [(n["id"], n["access"]) for n in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if not cursor:
            break
    assert seen == [(b2, "owner"), (a2, "edit"), (b1, "owner"), (a1, "view")]
    assert a3 not in notes.ids(bob, limit=50)
    assert notes.get(bob, a2).json()["access"] == "edit" and notes.get(bob, a3).status_code == 404
    assert notes.ids(bob, tag="x") == [b2, a2, a1]
    assert notes.ids(bob, scope="shared", status="ready") == [a2, a1]
    assert notes.ids(bob, scope="shared", **{"from": "2999-01-01T00:00:00Z"}) == []
    # Alice's list is hers alone: nothing is shared with her.
    assert notes.ids(alice) == [a3, a2, a1]
