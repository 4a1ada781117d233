"""Settlements (partial, full, undo), balances exact to the minor unit under concurrent
writers, the per-contact view, CSV export."""

from __future__ import annotations

import asyncio
import csv
import io
import random
from decimal import Decimal

import httpx
from eindr_common.testing import auth_headers, new_uid


def test_partial_then_full_settlement_and_undo(ledger, new_entry, totals_match_entries):
    me = ledger()
    e = new_entry(me, amount="20.00")
    r = me.post(f"/v1/ledger/entries/{e['id']}/settle", json={"amount": "5.5"})
    assert r.status_code == 201, r.text
    s1 = r.json()
    assert s1["entry"]["settled_amount"] == "5.50" and s1["entry"]["remaining_amount"] == "14.50" and s1["entry"]["status"] == "open"
    assert s1["settlement"]["kind"] == "settlement" and s1["settlement"]["amount"] == "5.50"
    assert s1["settlement"]["settles_entry_id"] == e["id"] and s1["settlement"]["status"] == "applied"
    # More than remains, wrong decimals, zero: 400 naming amount, nothing changes.
    for bad in ("14.51", "1.001", "0", "-1", "abc"):
        r = me.post(f"/v1/ledger/entries/{e['id']}/settle", json={"amount": bad})
        assert r.status_code == 400 and r.json()["errors"][0]["field"] == "amount", (bad, r.text)
    bal = me.get("/v1/ledger/balances").json()["items"]
    assert bal == [{"contact": "name:ali", "counterparty": {"user_id": None, "name": "Ali"}, "currency": "USD", "net_amount": "14.50", "direction": "they_owe_me", "entries": 2}]
    # Settle the rest (no amount = all that remains).
    s2 = me.post(f"/v1/ledger/entries/{e['id']}/settle").json()
    assert s2["settlement"]["amount"] == "14.50" and s2["entry"]["status"] == "settled" and s2["entry"]["remaining_amount"] == "0.00"
    r = me.post(f"/v1/ledger/entries/{e['id']}/settle", json={"amount": "1"})
    assert r.status_code == 409 and r.json()["code"] == "already_settled"
    assert me.get("/v1/ledger/balances").json()["items"][0]["direction"] == "settled"
    assert me.get("/v1/ledger/entries", params={"status": "settled"}).json()["items"][0]["id"] == e["id"]
    # A settlement cannot be settled, edited or deleted: it is undone.
    sid = s1["settlement"]["id"]
    assert me.post(f"/v1/ledger/entries/{sid}/settle").json()["code"] == "not_settleable"
    assert me.patch(f"/v1/ledger/entries/{sid}", json={"note": "x"}).status_code == 409
    assert me.delete(f"/v1/ledger/entries/{sid}").status_code == 409
    assert me.post(f"/v1/ledger/entries/{e['id']}/undo").json()["code"] == "not_a_settlement"
    u = me.post(f"/v1/ledger/entries/{sid}/undo")
    assert u.status_code == 200, u.text
    assert u.json()["settlement"]["status"] == "voided" and u.json()["settlement"]["voided_at"]
    assert u.json()["entry"]["status"] == "open" and u.json()["entry"]["remaining_amount"] == "5.50"
    assert me.post(f"/v1/ledger/entries/{sid}/undo").json()["code"] == "already_undone"
    bal = me.get("/v1/ledger/balances").json()["items"][0]
    assert bal["net_amount"] == "5.50" and bal["direction"] == "they_owe_me"
    detail = me.get(f"/v1/ledger/entries/{e['id']}").json()
    assert [s["status"] for s in detail["settlements"]] == ["voided", "applied"]
    # The amount cannot drop below what is settled.
    r = me.patch(f"/v1/ledger/entries/{e['id']}", json={"amount": "10"})
    assert r.status_code == 409 and r.json()["code"] == "amount_below_settled"
    r = me.patch(f"/v1/ledger/entries/{e['id']}", json={"amount": "14.50"})
    assert r.status_code == 200 and r.json()["status"] == "settled"
    totals_match_entries(me.uid)
    # Renaming the contact moves its totals; deleting the entry takes its settlements along.
    me.patch(f"/v1/ledger/entries/{e['id']}", json={"counterparty_name": "Alina"})
    totals_match_entries(me.uid)
    assert [b["contact"] for b in me.get("/v1/ledger/balances").json()["items"]] == ["name:alina"]
    assert me.delete(f"/v1/ledger/entries/{e['id']}").status_code == 204
    assert me.get("/v1/ledger/balances").json()["items"] == []
    totals_match_entries(me.uid)


def test_balances_net_per_contact_and_currency_never_converted(ledger, new_entry, totals_match_entries):
    me = ledger()
    new_entry(me, counterparty_name="Ali", amount="20", currency="USD")
    new_entry(me, counterparty_name="ali ", amount="5.25", currency="USD", direction="i_owe_them")
    new_entry(me, counterparty_name="Ali", amount="1000", currency="JPY", direction="i_owe_them")
    new_entry(me, counterparty_name="Bea", amount="0.001", currency="KWD")
    new_entry(me, counterparty_name="Cas", amount="3", currency="EUR")
    new_entry(me, counterparty_name="Cas", amount="3", currency="EUR", direction="i_owe_them")
    items = {(b["contact"], b["currency"]): b for b in me.get("/v1/ledger/balances").json()["items"]}
    assert items[("name:ali", "USD")]["net_amount"] == "14.75" and items[("name:ali", "USD")]["direction"] == "they_owe_me"
    assert items[("name:ali", "JPY")]["net_amount"] == "1000" and items[("name:ali", "JPY")]["direction"] == "i_owe_them"
    assert items[("name:bea", "KWD")]["net_amount"] == "0.001"
    assert items[("name:cas", "EUR")] | {} == {"contact": "name:cas", "counterparty": {"user_id": None, "name": "Cas"}, "currency": "EUR", "net_amount": "0.00", "direction": "settled", "entries": 2}
    one = me.get("/v1/ledger/balances/name:ali").json()
    assert {(t["currency"], t["net_amount"], t["direction"]) for t in one["totals"]} == {("USD", "14.75", "they_owe_me"), ("JPY", "1000", "i_owe_them")}
    assert len(one["history"]) == 3 and one["partial"] is False
    assert me.get("/v1/ledger/balances/name:nobody").status_code == 404
    assert me.get("/v1/ledger/balances/ali").status_code == 400
    totals_match_entries(me.uid)


def test_concurrent_writers_keep_totals_exact(ledger_svc, db, totals_match_entries):
    """200 entries from 50 concurrent writers, plus concurrent partial settlements racing
    on one entry: the API's balance, SQL's sum and Python's Decimal sum agree exactly."""
    uid = new_uid()
    rng = random.Random(7)
    specs = []
    for i in range(200):
        currency = rng.choice(["USD", "JPY", "KWD"])
        places = {"USD": 2, "JPY": 0, "KWD": 3}[currency]
        amount = Decimal(rng.randint(1, 10**7)).scaleb(-places)
        specs.append((currency, f"{amount:f}", rng.choice(["they_owe_me", "i_owe_them"])))

    async def run() -> None:
        sem = asyncio.Semaphore(50)
        async with httpx.AsyncClient(base_url=ledger_svc.url, timeout=60) as client:
            async def one(spec):
                currency, amount, direction = spec
                async with sem:
                    r = await client.post("/v1/ledger/entries", headers=auth_headers(uid, "ledger"),
                                          json={"counterparty_name": "Ali", "direction": direction, "amount": amount, "currency": currency})
                    assert r.status_code == 201, r.text
            await asyncio.gather(*(one(s) for s in specs))
            # 30 racing settlements of 1.00 on a 20.00 entry: exactly 20 succeed.
            r = await client.post("/v1/ledger/entries", headers=auth_headers(uid, "ledger"),
                                  json={"counterparty_name": "Bea", "direction": "they_owe_me", "amount": "20.00", "currency": "USD"})
            eid = r.json()["id"]
            results = await asyncio.gather(*(
                client.post(f"/v1/ledger/entries/{eid}/settle", headers=auth_headers(uid, "ledger"), json={"amount": "1.00"}) for _ in range(30)
            ))
            codes = sorted(r.status_code for r in results)
            assert codes.count(201) == 20 and set(codes) <= {201, 409}, codes

    asyncio.run(run())
    expected: dict[str, Decimal] = {}
    for currency, amount, direction in specs:
        expected[currency] = expected.get(currency, Decimal(0)) + (Decimal(amount) if direction == "they_owe_me" else -Decimal(amount))
    with httpx.Client(base_url=ledger_svc.url) as client:
        items = client.get("/v1/ledger/balances", headers=auth_headers(uid, "ledger")).json()["items"]
    got = {b["currency"]: (Decimal(b["net_amount"]) if b["direction"] != "i_owe_them" else -Decimal(b["net_amount"])) for b in items if b["contact"] == "name:ali"}
    assert got == expected
    sql = dict(db.execute(
        "SELECT currency, sum(signed_minor) FROM ledger.entries WHERE owner_id = %s AND contact_key = 'name:ali' GROUP BY currency", (uid,)
    ).fetchall())
    exps = {"USD": 2, "JPY": 0, "KWD": 3}
    assert {c: Decimal(v).scaleb(-exps[c]) for c, v in sql.items()} == expected
    totals_match_entries(uid)
    bea = next(b for b in items if b["contact"] == "name:bea")
    assert bea["direction"] == "settled" and bea["net_amount"] == "0.00" and bea["entries"] == 21
    assert db.execute("SELECT settled_minor, status FROM ledger.entries WHERE owner_id = %s AND contact_key = 'name:bea' AND kind = 'entry'", (uid,)).fetchone() == (2000, "settled")


def test_csv_export(ledger, new_entry):
    me = ledger()
    e = new_entry(me, counterparty_name="=HYPERLINK(\"x\")", amount="1000", currency="JPY", note="+cmd, with \"quotes\"\nand a newline", occurred_on="2026-02-01")
    new_entry(me, counterparty_name="Bea", amount="1.5", currency="KWD", occurred_on="2026-02-02")
    me.post(f"/v1/ledger/entries/{e['id']}/settle", json={"amount": "400"})
    r = me.get("/v1/ledger/export.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["kind"] for row in rows] == ["entry", "entry", "settlement"] or len(rows) == 3
    first = next(row for row in rows if row["id"] == e["id"])
    assert first["amount"] == "1000" and first["currency"] == "JPY" and first["settled_amount"] == "400" and first["remaining_amount"] == "600"
    assert first["counterparty_name"].startswith("'=")  # formula neutralised
    assert first["note"] == "'+cmd, with \"quotes\"\nand a newline"
    assert {row["amount"] for row in rows} == {"1000", "1.500", "400"}
    only = list(csv.DictReader(io.StringIO(me.get("/v1/ledger/export.csv", params={"currency": "KWD"}).text)))
    assert len(only) == 1 and only[0]["amount"] == "1.500"
    assert me.get("/v1/ledger/export.csv", params={"currency": "XXX"}).status_code == 400


def test_concurrent_edits_moving_totals_in_opposite_directions_never_fail(ledger_svc, ledger, new_entry, totals_match_entries):
    """Edits that move entries between currencies in opposite orders take the same two
    totals rows in opposite orders (a deadlock when they interleave): the aborted one is
    retried, every request succeeds, totals stay exact."""
    me = ledger()
    usd = [new_entry(me, amount="5", currency="USD")["id"] for _ in range(12)]
    eur = [new_entry(me, amount="7", currency="EUR")["id"] for _ in range(12)]

    async def run() -> list[int]:
        async with httpx.AsyncClient(base_url=ledger_svc.url, timeout=60) as client:
            calls = []
            for a, b in zip(usd, eur):
                calls.append(client.patch(f"/v1/ledger/entries/{a}", headers=auth_headers(me.uid, "ledger"), json={"currency": "EUR"}))
                calls.append(client.patch(f"/v1/ledger/entries/{b}", headers=auth_headers(me.uid, "ledger"), json={"currency": "USD"}))
            return [r.status_code for r in await asyncio.gather(*calls)]

    assert set(asyncio.run(run())) == {200}
    items = {b["currency"]: b["net_amount"] for b in me.get("/v1/ledger/balances").json()["items"]}
    assert items == {"EUR": "60.00", "USD": "84.00"}
    totals_match_entries(me.uid)


def test_settle_honours_idempotency_key(ledger, new_entry, db):
    me = ledger()
    e = new_entry(me, amount="10")
    h = {"Idempotency-Key": "settle-" + new_uid()}
    first = me.post(f"/v1/ledger/entries/{e['id']}/settle", json={"amount": "4"}, headers=h)
    again = me.post(f"/v1/ledger/entries/{e['id']}/settle", json={"amount": "4"}, headers=h)
    assert first.status_code == again.status_code == 201
    assert first.json()["settlement"]["id"] == again.json()["settlement"]["id"]
    assert me.get(f"/v1/ledger/entries/{e['id']}").json()["remaining_amount"] == "6.00"
    other = me.post(f"/v1/ledger/entries/{e['id']}/settle", json={"amount": "1"}, headers=h)
    assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"


def test_contact_history_pages_and_names_with_slashes(ledger, new_entry):
    me = ledger()
    ids = {new_entry(me, counterparty_name="A/B Shop", amount=str(i + 1), occurred_on=f"2026-04-0{i + 1}")["id"] for i in range(5)}
    first = me.get("/v1/ledger/balances/name:a/b shop", params={"limit": 2})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["totals"] == [{"currency": "USD", "net_amount": "15.00", "direction": "they_owe_me"}]
    assert body["counterparty"] == {"user_id": None, "name": "A/B Shop"}
    seen = [e["id"] for e in body["history"]]
    cursor = body["next_cursor"]
    while cursor:
        page = me.get("/v1/ledger/balances/name:a/b shop", params={"limit": 2, "cursor": cursor}).json()
        seen += [e["id"] for e in page["history"]]
        cursor = page["next_cursor"]
    assert len(seen) == 5 and set(seen) == ids
