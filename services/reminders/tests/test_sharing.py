"""Reminders shared through the real friends service, and reminders trusted friends create
for someone: listed and read by the friend with the sharer's identity, changed by them only
with ``edit`` access (never deleted, cancelled, snoozed, completed, reopened or shared
further), gone from the very next request after a revocation, a downgrade, an unfriending
or a block; created for a friend only under a ``trusted`` grant, and refusable by the owner.
Every answer is checked for the owner, the friend and a third user."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis
from eindr_common.testing import auth_headers, new_uid


def soon(minutes: float = 60) -> str:
    return (datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=minutes)).isoformat()


class Reminders:
    """The real reminders API, one user at a time."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def _h(self, uid: str) -> dict[str, str]:
        return auth_headers(uid, "reminders")

    def create(self, uid: str, **body) -> dict:
        r = self.post(uid, "/v1/reminders", {"due_at": soon(), **body})
        assert r.status_code == 201, r.text
        return r.json()

    def post(self, uid: str, path: str, body: dict | None = None) -> httpx.Response:
        return self.client.post(path, json=body, headers=self._h(uid))

    def get(self, uid: str, rid: str) -> httpx.Response:
        return self.client.get(f"/v1/reminders/{rid}", headers=self._h(uid))

    def patch(self, uid: str, rid: str, body: dict) -> httpx.Response:
        return self.client.patch(f"/v1/reminders/{rid}", json=body, headers=self._h(uid))

    def items(self, uid: str, **params) -> list[dict]:
        r = self.client.get("/v1/reminders", params={"limit": 200, **params}, headers=self._h(uid))
        assert r.status_code == 200, r.text
        return r.json()["items"]

    def ids(self, uid: str, **params) -> list[str]:
        return [i["id"] for i in self.items(uid, **params)]

    def owner_only_routes(self, uid: str, rid: str) -> dict[str, httpx.Response]:
        """Every route that ends or steers a reminder: only its owner may use them."""
        return {
            "delete": self.client.delete(f"/v1/reminders/{rid}", headers=self._h(uid)),
            "cancel": self.post(uid, f"/v1/reminders/{rid}/cancel", {"scope": "series"}),
            "snooze": self.post(uid, f"/v1/reminders/{rid}/snooze", {"minutes": 5}),
            "complete": self.post(uid, f"/v1/reminders/{rid}/complete"),
            "reopen": self.post(uid, f"/v1/reminders/{rid}/reopen"),
            "refuse": self.post(uid, f"/v1/reminders/{rid}/refuse"),
        }

    def sees_nothing_of(self, uid: str, rid: str) -> bool:
        """``uid`` gets 404 for the id on every route and finds it in no list."""
        codes = {
            self.get(uid, rid).status_code,
            self.patch(uid, rid, {"title": "x"}).status_code,
            self.client.get(f"/v1/reminders/{rid}/occurrences", headers=self._h(uid)).status_code,
            *(r.status_code for r in self.owner_only_routes(uid, rid).values()),
        }
        return codes == {404} and rid not in self.ids(uid) and rid not in self.ids(uid, scope="shared")


@pytest.fixture
def reminders(api) -> Reminders:
    return Reminders(api)


def _problem(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json" and r.json()["code"] == code, r.text
    return r.json()


def _events(redis_url: str, rid: str) -> list[tuple[str, dict]]:
    with redis.Redis.from_url(redis_url, decode_responses=True) as rds:
        out = [(f["type"], json.loads(f["payload"])) for _, f in rds.xrange("eindr:events:reminders")]
    return [(t, p) for t, p in out if p.get("reminder_id") == rid]


def test_view_share_is_listed_and_read_only(reminders, friends):
    alice, bob, carol = new_uid(), new_uid(), new_uid()
    friends.befriend(alice, bob)
    friends.befriend(bob, carol)
    shared = reminders.create(alice, title="Water the plants", tags=["home"], due_at=soon(120))
    rid = shared["id"]
    own = reminders.create(bob, title="Dentist", due_at=soon(60))
    assert reminders.ids(bob) == [own["id"]]
    assert reminders.sees_nothing_of(bob, rid)

    share_id = friends.share(alice, bob, rid, "view")
    listed = {i["id"]: i for i in reminders.items(bob)}
    assert list(listed) == [own["id"], rid]  # one due-time order across own and shared
    assert (listed[rid]["shared_by"], listed[rid]["access"]) == (alice, "view")
    assert (listed[own["id"]]["shared_by"], listed[own["id"]]["access"]) == (None, "owner")
    assert reminders.ids(bob, scope="own") == [own["id"]]
    assert reminders.ids(bob, scope="shared") == [rid]
    assert reminders.ids(bob, tag="home") == [rid] and reminders.ids(bob, q="plants") == [rid]
    r = reminders.client.get("/v1/reminders", params={"scope": "everything"}, headers=auth_headers(bob, "reminders"))
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "scope"
    got = reminders.get(bob, rid)
    assert got.status_code == 200 and (got.json()["shared_by"], got.json()["access"]) == (alice, "view")
    assert got.json()["title"] == "Water the plants"
    occ = reminders.client.get(f"/v1/reminders/{rid}/occurrences", headers=auth_headers(bob, "reminders"))
    assert occ.status_code == 200 and len(occ.json()["items"]) == 1

    # Read-only: no change; ending or steering it is the owner's alone.
    _problem(reminders.patch(bob, rid, {"title": "mine"}), 403, "reminder_read_only")
    for route, answer in reminders.owner_only_routes(bob, rid).items():
        assert _problem(answer, 403, "reminder_owner_only")["detail"].endswith(f"{route} this reminder")
    # Cancel by filter touches only the caller's own reminders, even when given the id.
    r = reminders.post(bob, "/v1/reminders:cancel", {"ids": [rid]})
    assert r.status_code == 200 and r.json() == {"cancelled": 0}
    mine = reminders.get(alice, rid).json()
    assert (mine["title"], mine["status"], mine["shared_by"], mine["access"]) == (
        "Water the plants",
        "scheduled",
        None,
        "owner",
    )
    assert reminders.ids(alice, scope="shared") == [] and reminders.ids(alice) == [rid]
    # A third user (Bob's friend, not Alice's) sees nothing of it anywhere.
    assert reminders.ids(carol) == [] and reminders.sees_nothing_of(carol, rid)

    # Revoked: gone from the list and the id at once.
    friends.revoke(alice, share_id)
    assert reminders.ids(bob) == [own["id"]]
    assert reminders.sees_nothing_of(bob, rid)
    assert reminders.get(alice, rid).json()["status"] == "scheduled"


def test_edit_share_changes_texts_and_time_but_never_ends_or_reshares(reminders, friends, redis_url):
    alice, bob, carol = new_uid(), new_uid(), new_uid()
    friends.befriend(alice, bob)
    friends.befriend(bob, carol)
    rid = reminders.create(alice, title="Book the campsite", tags=["trip"], due_at=soon(90))["id"]
    share_id = friends.share(alice, bob, rid, "edit")
    assert [(i["id"], i["access"]) for i in reminders.items(bob, scope="shared")] == [(rid, "edit")]

    new_due = soon(30)
    r = reminders.patch(
        bob, rid, {"title": "Book the campsite by Friday", "due_at": new_due, "tags": ["Trip", "camping"]}
    )
    assert r.status_code == 200, r.text
    edited = r.json()
    assert (edited["title"], edited["shared_by"], edited["access"]) == ("Book the campsite by Friday", alice, "edit")
    # Still Alice's reminder, with Bob's change, rescheduled on her scheduler.
    mine = reminders.get(alice, rid).json()
    assert (mine["title"], mine["access"], mine["tags"]) == (
        "Book the campsite by Friday",
        "owner",
        ["Trip", "camping"],
    )
    assert datetime.fromisoformat(mine["next_fire_at"]) == datetime.fromisoformat(new_due)
    assert reminders.ids(alice, q="Friday") == [rid]
    # The event is the owner's and names who changed it.
    updates = [p for t, p in _events(redis_url, rid) if t == "reminder.updated"]
    assert [(p["uid"], p.get("by")) for p in updates] == [(alice, bob)]
    # Bad input from the editor is a 400 naming the field, as for the owner; nothing changes.
    r = reminders.patch(bob, rid, {"rrule": "FREQ=SOMETIMES"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "rrule"

    # Edit is not ownership.
    for answer in reminders.owner_only_routes(bob, rid).values():
        _problem(answer, 403, "reminder_owner_only")
    assert reminders.get(alice, rid).json()["status"] == "scheduled"
    # Nor can Bob share it further: friends accepts his share of the id, reminders honours
    # only the owner's.
    friends.share(bob, carol, rid, "edit")
    assert reminders.sees_nothing_of(carol, rid)

    # Downgraded to view: read-only from the next request; upgraded again: editable.
    friends.set_access(alice, share_id, "view")
    _problem(reminders.patch(bob, rid, {"title": "x"}), 403, "reminder_read_only")
    assert [(i["id"], i["access"]) for i in reminders.items(bob)] == [(rid, "view")]
    friends.set_access(alice, share_id, "edit")
    assert reminders.patch(bob, rid, {"notes": "pitch 12"}).json()["notes"] == "pitch 12"

    # Unfriended: nothing, at once. Friends again with a new share, until a block.
    friends.unfriend(alice, bob)
    assert reminders.sees_nothing_of(bob, rid)
    friends.befriend(bob, alice)
    assert reminders.ids(bob) == []
    friends.share(alice, bob, rid, "view")
    assert reminders.ids(bob) == [rid]
    friends.block(alice, bob)
    assert reminders.sees_nothing_of(bob, rid)
    assert reminders.get(alice, rid).json()["notes"] == "pitch 12"


def test_list_pages_through_own_and_shared_in_due_order(reminders, friends):
    alice, bob = new_uid(), new_uid()
    friends.befriend(alice, bob)
    a1 = reminders.create(alice, title="a1", due_at=soon(10))["id"]
    b1 = reminders.create(bob, title="b1", due_at=soon(20))["id"]
    a2 = reminders.create(alice, title="a2", due_at=soon(30))["id"]
    b2 = reminders.create(bob, title="b2", due_at=soon(40))["id"]
    a3 = reminders.create(alice, title="a3 (not shared)", due_at=soon(50))["id"]
    friends.share(alice, bob, a1)
    friends.share(alice, bob, a2.upper(), "edit")  # friends keeps ids as typed; reminders compares UUIDs
    # Shares that grant nothing: Alice "sharing" Bob's own reminder, or an id that is none.
    friends.share(alice, bob, b1)
    friends.share(alice, bob, str(uuid.uuid4()))

    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        r = reminders.client.get("/v1/reminders", params=params, headers=auth_headers(bob, "reminders"))
        assert r.status_code == 200, r.text
        seen += [(i["id"], i["access"]) for i in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if not cursor:
            break
    assert seen == [(a1, "view"), (b1, "owner"), (a2, "edit"), (b2, "owner")]
    assert reminders.get(bob, a2).json()["access"] == "edit" and reminders.get(bob, a3).status_code == 404
    assert reminders.ids(bob, scope="shared") == [a1, a2]
    assert reminders.ids(bob, scope="shared", due_from=soon(25)) == [a2]
    # Alice's list is hers alone: nothing is shared with her (her "share" of b1 gives her nothing).
    assert reminders.ids(alice) == [a1, a2, a3] and reminders.get(alice, b1).status_code == 404


def test_only_a_trusted_friend_creates_reminders_for_someone(reminders, friends, redis_url):
    alice, bob, carol = new_uid(), new_uid(), new_uid()
    body = {"title": "Pick up the kids", "due_at": soon(45), "for_user_id": alice}

    # Not friends, then friends with the default basic grant: refused, naming why, nothing stored.
    assert (
        _problem(reminders.post(carol, "/v1/reminders", body), 403, "friend_permission_required")["reason"]
        == "not_friends"
    )
    friends.befriend(alice, bob)
    friends.befriend(alice, carol)
    answer = _problem(reminders.post(bob, "/v1/reminders", body), 403, "friend_permission_required")
    assert answer["reason"] == "not_trusted" and "trusted" in answer["detail"]
    assert reminders.ids(alice) == [] and reminders.ids(bob) == []

    # Alice trusts Bob (not Carol): Bob's reminder for her is hers, from a friend, by Bob.
    friends.set_tier(alice, bob, "trusted")
    r = reminders.post(bob, "/v1/reminders", body)
    assert r.status_code == 201, r.text
    created = r.json()
    rid = created["id"]
    assert (created["source"], created["created_by"], created["access"]) == ("friend", bob, "creator")
    listed = reminders.items(alice)
    assert [(i["id"], i["source"], i["created_by"], i["access"]) for i in listed] == [(rid, "friend", bob, "owner")]
    assert [(p["uid"], p.get("created_by")) for t, p in _events(redis_url, rid) if t == "reminder.created"] == [
        (alice, bob)
    ]
    # It is not Bob's: not in his list, not readable by him (unless Alice shares it).
    assert reminders.sees_nothing_of(bob, rid)
    _problem(reminders.post(carol, "/v1/reminders", body), 403, "friend_permission_required")
    # Trust goes one way: Bob has not granted Alice trusted.
    r = reminders.post(alice, "/v1/reminders", {**body, "for_user_id": bob})
    assert _problem(r, 403, "friend_permission_required")["reason"] == "not_trusted"
    # Creating "for" oneself is an ordinary reminder; bulk items cannot be for anyone.
    own = reminders.post(alice, "/v1/reminders", {**body, "title": "mine"})
    assert own.status_code == 201 and (own.json()["source"], own.json()["created_by"]) == ("text", None)
    r = reminders.post(bob, "/v1/reminders:bulk", {"items": [body]})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "items[0].for_user_id"
    r = reminders.post(bob, "/v1/reminders", {**body, "for_user_id": "a\x00b"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "for_user_id"

    # Alice refuses it: cancelled, never fires, marked; refusing again changes nothing.
    # Only the owner may refuse, and only what a friend created.
    _problem(reminders.post(bob, f"/v1/reminders/{rid}/refuse"), 404, "reminder_not_found")
    _problem(reminders.post(carol, f"/v1/reminders/{rid}/refuse"), 404, "reminder_not_found")
    refused = reminders.post(alice, f"/v1/reminders/{rid}/refuse")
    assert refused.status_code == 200, refused.text
    assert refused.json()["status"] == "cancelled" and refused.json()["next_fire_at"] is None
    assert refused.json()["refused_at"] is not None
    again = reminders.post(alice, f"/v1/reminders/{rid}/refuse").json()
    assert again["refused_at"] == refused.json()["refused_at"]
    assert [(t, p.get("created_by")) for t, p in _events(redis_url, rid) if t == "reminder.refused"] == [
        ("reminder.refused", bob)
    ]
    _problem(reminders.post(alice, f"/v1/reminders/{own.json()['id']}/refuse"), 409, "reminder_not_from_friend")

    # Downgraded: refused from the next request; blocked: refused, naming the block.
    friends.set_tier(alice, bob, "basic")
    assert (
        _problem(reminders.post(bob, "/v1/reminders", body), 403, "friend_permission_required")["reason"]
        == "not_trusted"
    )
    friends.set_tier(alice, bob, "trusted")
    second = reminders.post(bob, "/v1/reminders", body)
    assert second.status_code == 201
    # The owner can also delete one like any of her reminders.
    assert (
        reminders.client.delete(
            f"/v1/reminders/{second.json()['id']}", headers=auth_headers(alice, "reminders")
        ).status_code
        == 204
    )
    friends.block(alice, bob)
    assert (
        _problem(reminders.post(bob, "/v1/reminders", body), 403, "friend_permission_required")["reason"] == "blocked"
    )
    assert set(reminders.ids(alice)) == {own.json()["id"], rid}


def test_the_scheduler_notifies_the_owner_alone(reminders, friends, start_worker_module, db):
    start_worker_module()
    alice, bob = new_uid(), new_uid()
    friends.befriend(alice, bob)
    friends.set_tier(alice, bob, "trusted")
    due = soon(0.05)
    shared = reminders.create(alice, title="shared with Bob", due_at=due)["id"]
    friends.share(alice, bob, shared, "edit")
    r = reminders.post(bob, "/v1/reminders", {"title": "from Bob", "due_at": due, "for_user_id": alice})
    assert r.status_code == 201, r.text
    made = r.json()["id"]

    def delivered() -> list[tuple]:
        return db.execute(
            "SELECT reminder_id::text, uid FROM reminders.deliveries WHERE reminder_id = ANY(%s::uuid[]) OR uid = %s",
            [[shared, made], bob],
        ).fetchall()

    deadline = time.monotonic() + 60  # catches a hang only
    while len(delivered()) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sorted(delivered()) == sorted([(shared, alice), (made, alice)])
