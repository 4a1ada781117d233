"""Entries shared between friends (both trusted): mirrored in both ledgers, settled by
either side, disputed by the other side; tier changes take effect at once; a third user
sees nothing; friends down degrades honestly; user.deleted erases and unmirrors."""

from __future__ import annotations

from decimal import Decimal

from eindr_common import events as ev
from eindr_common.localstack import free_port
from eindr_common.testing import eventually


def balance(client, contact: str, currency: str = "USD"):
    for b in client.get("/v1/ledger/balances").json()["items"]:
        if b["contact"] == contact and b["currency"] == currency:
            return b["direction"], b["net_amount"]
    return None


def test_mirrored_entry_seen_and_settled_by_both(ledger, friends, befriend, new_entry, totals_match_entries):
    a, b = ledger(), ledger()
    befriend(a.uid, b.uid, "trusted", "trusted")
    e = new_entry(a, counterparty_user_id=b.uid, counterparty_name="Bob", amount="20.00", note="concert")
    assert e["contact"] == f"user:{b.uid}" and e["mirrored"] is False
    # B sees it mirrored: direction flipped, the owner as the contact.
    seen = b.get(f"/v1/ledger/entries/{e['id']}").json()
    assert seen["mirrored"] is True and seen["direction"] == "i_owe_them" and seen["contact"] == f"user:{a.uid}"
    assert seen["counterparty"] == {"user_id": a.uid, "name": None, "phone_hash": None} and seen["note"] == "concert"
    assert [x["id"] for x in b.get("/v1/ledger/entries").json()["items"]] == [e["id"]]
    assert balance(a, f"user:{b.uid}") == ("they_owe_me", "20.00")
    assert balance(b, f"user:{a.uid}") == ("i_owe_them", "20.00")
    # B's own entry about A nets with A's mirrored one in B's totals.
    new_entry(b, counterparty_user_id=a.uid, amount="2.50", direction="they_owe_me")
    assert balance(b, f"user:{a.uid}") == ("i_owe_them", "17.50")
    assert balance(a, f"user:{b.uid}") == ("they_owe_me", "17.50")
    # Either side settles; both see it.
    r = b.post(f"/v1/ledger/entries/{e['id']}/settle", json={"amount": "5"})
    assert r.status_code == 201, r.text
    assert r.json()["entry"]["direction"] == "i_owe_them" and r.json()["entry"]["remaining_amount"] == "15.00"
    sid = r.json()["settlement"]["id"]
    assert a.get(f"/v1/ledger/entries/{e['id']}").json()["settled_amount"] == "5.00"
    assert balance(a, f"user:{b.uid}") == ("they_owe_me", "12.50")
    assert balance(b, f"user:{a.uid}") == ("i_owe_them", "12.50")
    # The owner can undo the friend's settlement; both see that too.
    assert a.post(f"/v1/ledger/entries/{sid}/undo").status_code == 200
    assert b.get(f"/v1/ledger/entries/{e['id']}").json()["remaining_amount"] == "20.00"
    one = b.get(f"/v1/ledger/balances/user:{a.uid}").json()
    assert one["totals"] == [{"currency": "USD", "net_amount": "17.50", "direction": "i_owe_them"}]
    assert len(one["history"]) == 3  # A's entry, A's voided settlement, B's own entry
    # Only the owner edits or deletes; only the other side disputes.
    assert b.patch(f"/v1/ledger/entries/{e['id']}", json={"amount": "1"}).json()["code"] == "not_entry_owner"
    assert b.delete(f"/v1/ledger/entries/{e['id']}").status_code == 403
    assert a.post(f"/v1/ledger/entries/{e['id']}/dispute", json={"reason": "x"}).json()["code"] == "cannot_dispute_own_entry"
    r = b.post(f"/v1/ledger/entries/{e['id']}/dispute", json={"reason": "It was 15"})
    assert r.status_code == 200 and r.json()["disputed"] is True
    got = a.get(f"/v1/ledger/entries/{e['id']}").json()
    assert got["disputed"] is True and got["dispute_reason"] == "It was 15" and got["disputed_by"] == b.uid
    for bad in ({"reason": ""}, {"reason": "\x00"}, {"reason": "r" * 501}, {}):
        assert b.post(f"/v1/ledger/entries/{e['id']}/dispute", json=bad).status_code == 400
    assert b.delete(f"/v1/ledger/entries/{e['id']}/dispute").json()["disputed"] is False
    # Owner's edit shows to both; CSV of B marks it mirrored.
    a.patch(f"/v1/ledger/entries/{e['id']}", json={"amount": "15"})
    assert balance(b, f"user:{a.uid}") == ("i_owe_them", "12.50")
    assert "true" in [line.split(",")[-2] for line in b.get("/v1/ledger/export.csv").text.splitlines()[1:]]
    totals_match_entries(a.uid)
    totals_match_entries(b.uid)


def test_balances_list_is_the_entries_definition_in_order_with_peers_netted_in(ledger, befriend, new_entry, db):
    """The whole balances answer equals the GROUP BY over the entries the caller may see,
    in code-point order of (contact, currency): own rows pass through, a peer's rows net
    into the same contact or are inserted where they sort, peers left out."""
    me, a, c, basic = ledger(), ledger(), ledger(), ledger()
    befriend(me.uid, a.uid, "trusted", "trusted")
    befriend(me.uid, c.uid, "trusted", "trusted")
    befriend(me.uid, basic.uid)  # basic: shares nothing with me
    for name, amount, currency, direction in (("Zed", "4", "USD", "they_owe_me"), ("Amy", "1.5", "EUR", "i_owe_them"),
                                               ("Émile", "700", "JPY", "they_owe_me"), ("amy", "2", "USD", "they_owe_me")):
        new_entry(me, counterparty_name=name, amount=amount, currency=currency, direction=direction)
    new_entry(me, counterparty_user_id=a.uid, amount="10", currency="USD")
    new_entry(a, counterparty_user_id=me.uid, amount="2.25", currency="USD")  # nets into my own user:a USD row
    new_entry(a, counterparty_user_id=me.uid, amount="0.125", currency="KWD", direction="i_owe_them")  # only A has it
    new_entry(c, counterparty_user_id=me.uid, amount="3", currency="EUR")  # only C has it
    new_entry(basic, counterparty_user_id=me.uid, amount="99", currency="USD")  # not shared with me

    expected: dict[tuple[str, str], list] = {}
    for contact, currency, net, n in db.execute(
        """SELECT contact_key, currency, sum(signed_minor), count(*) FROM ledger.entries
           WHERE owner_id = %s AND status <> 'voided' GROUP BY 1, 2
           UNION ALL
           SELECT 'user:' || owner_id, currency, -sum(signed_minor), count(*) FROM ledger.entries
           WHERE counterparty_user_id = %s AND owner_id = ANY(%s) AND status <> 'voided' GROUP BY owner_id, currency""",
        (me.uid, me.uid, [a.uid, c.uid]),
    ).fetchall():
        slot = expected.setdefault((contact, currency), [0, 0])
        slot[0] += net
        slot[1] += n
    want = []
    for (contact, currency), (net, n) in sorted(expected.items()):
        exponent = {"USD": 2, "EUR": 2, "JPY": 0, "KWD": 3}[currency]
        direction = "they_owe_me" if net > 0 else "i_owe_them" if net < 0 else "settled"
        want.append((contact, currency, str(Decimal(abs(net)).scaleb(-exponent)), direction, n))
    got = [(b["contact"], b["currency"], b["net_amount"], b["direction"], b["entries"]) for b in me.get("/v1/ledger/balances").json()["items"]]
    assert got == want
    assert (f"user:{a.uid}", "USD", "7.75", "they_owe_me", 2) in got and (f"user:{c.uid}", "EUR", "3.00", "i_owe_them", 1) in got
    assert [contact for contact, *_ in got[:4]] == ["name:amy", "name:amy", "name:zed", "name:émile"]
    assert not any(contact == f"user:{basic.uid}" for contact, *_ in got)


def test_tiers_allow_and_deny_exactly_and_at_once(ledger, friends, befriend, new_entry):
    a, b = ledger(), ledger()
    befriend(a.uid, b.uid)  # basic both ways: nothing shared
    e = new_entry(a, counterparty_user_id=b.uid, amount="10")
    assert b.get(f"/v1/ledger/entries/{e['id']}").status_code == 404
    assert balance(b, f"user:{a.uid}") is None
    fa, fb = friends(a.uid), friends(b.uid)
    fa.put(f"/v1/friends/{b.uid}/permissions", json={"tier": "trusted"})
    assert b.get(f"/v1/ledger/entries/{e['id']}").status_code == 404  # B has not trusted A back
    fb.put(f"/v1/friends/{a.uid}/permissions", json={"tier": "trusted"})
    assert b.get(f"/v1/ledger/entries/{e['id']}").status_code == 200
    assert balance(b, f"user:{a.uid}") == ("i_owe_them", "10.00")
    # Downgrade by the owner: gone in the very next request, for every route.
    fa.put(f"/v1/friends/{b.uid}/permissions", json={"tier": "basic"})
    assert b.get(f"/v1/ledger/entries/{e['id']}").status_code == 404
    assert b.post(f"/v1/ledger/entries/{e['id']}/settle").status_code == 404
    assert b.post(f"/v1/ledger/entries/{e['id']}/dispute", json={"reason": "no"}).status_code == 404
    assert b.patch(f"/v1/ledger/entries/{e['id']}", json={"amount": "1"}).status_code == 404
    assert balance(b, f"user:{a.uid}") is None and b.get("/v1/ledger/entries").json()["items"] == []
    fa.put(f"/v1/friends/{b.uid}/permissions", json={"tier": "trusted"})
    assert balance(b, f"user:{a.uid}") == ("i_owe_them", "10.00")
    # Downgrade by the counterparty works the same; removing the friend too.
    fb.put(f"/v1/friends/{a.uid}/permissions", json={"tier": "basic"})
    assert balance(b, f"user:{a.uid}") is None
    fb.put(f"/v1/friends/{a.uid}/permissions", json={"tier": "trusted"})
    assert balance(b, f"user:{a.uid}") == ("i_owe_them", "10.00")
    fb.delete(f"/v1/friends/{a.uid}")
    assert balance(b, f"user:{a.uid}") is None
    assert a.get(f"/v1/ledger/entries/{e['id']}").status_code == 200  # the owner keeps it


def test_third_user_sees_nothing_even_as_a_trusted_friend_of_both(ledger, befriend, new_entry):
    a, b, c = ledger(), ledger(), ledger()
    befriend(a.uid, b.uid, "trusted", "trusted")
    befriend(a.uid, c.uid, "trusted", "trusted")
    befriend(b.uid, c.uid, "trusted", "trusted")
    e = new_entry(a, counterparty_user_id=b.uid, amount="7")
    s = b.post(f"/v1/ledger/entries/{e['id']}/settle", json={"amount": "1"}).json()["settlement"]
    for eid in (e["id"], s["id"]):
        for method, path, body in (
            ("GET", f"/v1/ledger/entries/{eid}", None), ("PATCH", f"/v1/ledger/entries/{eid}", {"note": "x"}),
            ("DELETE", f"/v1/ledger/entries/{eid}", None), ("POST", f"/v1/ledger/entries/{eid}/settle", {}),
            ("POST", f"/v1/ledger/entries/{eid}/undo", None), ("POST", f"/v1/ledger/entries/{eid}/dispute", {"reason": "r"}),
            ("DELETE", f"/v1/ledger/entries/{eid}/dispute", None),
        ):
            r = c(method, path, json=body) if body is not None else c(method, path)
            assert r.status_code == 404, (method, path, r.text)
    assert c.get("/v1/ledger/entries").json()["items"] == []
    assert c.get(f"/v1/ledger/balances/user:{a.uid}").status_code == 404
    assert c.get(f"/v1/ledger/balances/user:{b.uid}").status_code == 404


def test_friends_down_degrades_to_own_entries_and_says_so(start_service, ledger, befriend, new_entry, reminders_down_url):
    dead = f"http://127.0.0.1:{free_port()}"
    alone = start_service("ledger", "eindr_ledger.app:create_app", env={"EINDR_FRIENDS_URL": dead, "EINDR_REMINDERS_URL": reminders_down_url})
    a, b = ledger(), ledger()
    befriend(a.uid, b.uid, "trusted", "trusted")
    e = new_entry(a, counterparty_user_id=b.uid, amount="3")
    own = new_entry(b, counterparty_name="Zed", amount="4")
    import httpx
    from eindr_common.testing import auth_headers

    with httpx.Client(base_url=alone.url, timeout=30) as client:
        r = client.get("/v1/ledger/balances", headers=auth_headers(b.uid, "ledger"))
        assert r.status_code == 200 and r.json()["partial"] is True and r.headers["eindr-degraded"] == "friends-unavailable"
        assert [x["contact"] for x in r.json()["items"]] == ["name:zed"]
        r = client.get("/v1/ledger/entries", headers=auth_headers(b.uid, "ledger"))
        assert [x["id"] for x in r.json()["items"]] == [own["id"]] and r.headers["eindr-degraded"] == "friends-unavailable"
        assert client.get(f"/v1/ledger/entries/{e['id']}", headers=auth_headers(b.uid, "ledger")).status_code == 404
        # Writes of one's own entries go on.
        r = client.post("/v1/ledger/entries", headers=auth_headers(a.uid, "ledger"), json={"counterparty_name": "Q", "direction": "they_owe_me", "amount": "1", "currency": "EUR"})
        assert r.status_code == 201
    alone.stop()


def test_user_deleted_erases_own_ledger_and_unmirrors_friends_entries(ledger, befriend, new_entry, rds, db, totals_match_entries):
    gone, friend = ledger(), ledger()
    befriend(gone.uid, friend.uid, "trusted", "trusted")
    own = new_entry(gone, counterparty_user_id=friend.uid, amount="9")
    gone.post(f"/v1/ledger/entries/{own['id']}/settle", json={"amount": "1"})
    about = new_entry(friend, counterparty_user_id=gone.uid, counterparty_name="Gina", amount="4", direction="i_owe_them")
    anon = new_entry(friend, counterparty_user_id=gone.uid, counterparty_name=None, amount="1", direction="they_owe_me")
    s = friend.post(f"/v1/ledger/entries/{anon['id']}/settle", json={"amount": "0.50"}).json()["settlement"]
    gone.post(f"/v1/ledger/entries/{s['id']}/undo")  # an action by the deleted user on the friend's data
    rds.xadd(ev.stream_name("users"), {"id": "x", "type": "user.deleted", "at": "0", "payload": f'{{"uid": "{gone.uid}"}}'})

    def erased():
        owned = db.execute("SELECT count(*) FROM ledger.entries WHERE owner_id = %s", (gone.uid,)).fetchone()[0]
        linked = db.execute("SELECT count(*) FROM ledger.entries WHERE counterparty_user_id = %s OR created_by = %s OR voided_by = %s", (gone.uid,) * 3).fetchone()[0]
        return owned == 0 and linked == 0

    assert eventually(erased)
    assert db.execute("SELECT count(*) FROM ledger.audit_log WHERE actor = %s OR subject = %s", (gone.uid, gone.uid)).fetchone()[0] == 0
    got = friend.get(f"/v1/ledger/entries/{about['id']}").json()
    assert got["counterparty"]["user_id"] is None and got["counterparty"]["name"] == "Gina" and got["contact"] == "name:gina"
    assert friend.get(f"/v1/ledger/entries/{anon['id']}").json()["contact"] == "name:deleted user"
    items = {b["contact"]: b for b in friend.get("/v1/ledger/balances").json()["items"]}
    assert items["name:gina"]["net_amount"] == "4.00" and items["name:deleted user"]["net_amount"] == "1.00"
    assert all(not c.startswith("user:") for c in items)
    totals_match_entries(friend.uid)
    assert db.execute("SELECT count(*) FROM ledger.totals WHERE owner_id = %s AND entries > 0", (gone.uid,)).fetchone()[0] == 0
