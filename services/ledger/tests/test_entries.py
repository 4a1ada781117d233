"""Ledger entries through the real ledger process: create, read, list, edit, delete;
bad input never stored; another user's ids are 404."""

from __future__ import annotations

import pytest
from eindr_common.testing import new_uid


def count_rows(db, owner: str) -> int:
    return db.execute("SELECT count(*) FROM ledger.entries WHERE owner_id = %s", (owner,)).fetchone()[0]


def test_create_and_get_entry(ledger, new_entry):
    me = ledger()
    e = new_entry(me, amount="20.5", note="lunch", occurred_on="2026-03-01")
    assert e["amount"] == "20.50" and e["currency"] == "USD"
    assert e["direction"] == "they_owe_me" and e["status"] == "open" and e["kind"] == "entry"
    assert e["contact"] == "name:ali" and e["counterparty"] == {"user_id": None, "name": "Ali", "phone_hash": None}
    assert e["remaining_amount"] == "20.50" and e["settled_amount"] == "0.00"
    assert e["mirrored"] is False and e["owner_id"] == me.uid and e["occurred_on"] == "2026-03-01"
    got = me.get(f"/v1/ledger/entries/{e['id']}")
    assert got.status_code == 200
    assert got.json()["settlements"] == []


@pytest.mark.parametrize(
    "currency, amount, stored",
    [("JPY", "1500", "1500"), ("USD", "0.01", "0.01"), ("KWD", "1.234", "1.234"), ("KWD", "7", "7.000"), ("BHD", "0.5", "0.500"), ("usd", "3", "3.00"), ("CLF", "1.0001", "1.0001")],
)
def test_minor_units_per_currency(ledger, new_entry, currency, amount, stored):
    e = new_entry(ledger(), currency=currency, amount=amount)
    assert e["amount"] == stored and e["currency"] == currency.upper()


BAD_INPUTS = [
    ({"currency": "JPY", "amount": "100.5"}, "amount"),
    ({"currency": "JPY", "amount": "100.0"}, "amount"),
    ({"currency": "USD", "amount": "1.234"}, "amount"),
    ({"currency": "KWD", "amount": "1.2345"}, "amount"),
    ({"amount": "0"}, "amount"),
    ({"amount": "0.00"}, "amount"),
    ({"amount": "-5"}, "amount"),
    ({"amount": "1e3"}, "amount"),
    ({"amount": " 5"}, "amount"),
    ({"amount": "1,000"}, "amount"),
    ({"amount": "NaN"}, "amount"),
    ({"amount": "1000000000000.01"}, "amount"),
    ({"amount": "10000000000000"}, "amount"),
    ({"amount": 20}, "amount"),
    ({"amount": 20.5}, "amount"),
    ({"amount": "9" * 100}, "amount"),
    ({"currency": "ABC"}, "currency"),
    ({"currency": "XAU"}, "currency"),
    ({"currency": "US"}, "currency"),
    ({"currency": "US\x00"}, "currency"),
    ({"currency": "USDX"}, "currency"),
    ({"direction": "sideways"}, "direction"),
    ({"counterparty_name": "Al\x00i"}, "counterparty_name"),
    ({"counterparty_name": "x" * 1_000_000}, "counterparty_name"),
    ({"counterparty_name": "   "}, "counterparty_name"),
    ({"note": "a\x00b"}, "note"),
    ({"note": "n" * 2001}, "note"),
    ({"counterparty_phone_hash": "abc"}, "counterparty_phone_hash"),
    ({"due_at": "2026-05-01T10:00:00"}, "due_at"),
    ({"occurred_on": "yesterday"}, "occurred_on"),
    ({"surprise": 1}, "surprise"),
]


@pytest.mark.parametrize("change, field", BAD_INPUTS)
def test_bad_input_is_400_naming_the_field_and_nothing_stored(ledger, db, change, field):
    me = ledger()
    body = {"counterparty_name": "Ali", "direction": "they_owe_me", "amount": "20.00", "currency": "USD", **change}
    r = me.post("/v1/ledger/entries", json=body)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert field in {e["field"] for e in problem["errors"]}, problem
    assert "\x00" not in r.text and len(r.text) < 5000
    assert count_rows(db, me.uid) == 0


def test_counterparty_is_required_and_not_yourself(ledger, db):
    me = ledger()
    r = me.post("/v1/ledger/entries", json={"direction": "they_owe_me", "amount": "1", "currency": "USD"})
    assert r.status_code == 400
    r = me.post("/v1/ledger/entries", json={"counterparty_user_id": me.uid, "direction": "they_owe_me", "amount": "1", "currency": "USD"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "counterparty_user_id"
    assert count_rows(db, me.uid) == 0


def test_list_filters_and_cursor_pagination(ledger, new_entry):
    me = ledger()
    made = []
    for i in range(7):
        made.append(new_entry(me, counterparty_name="Ali" if i % 2 else "Bea", currency="EUR" if i < 3 else "USD", amount=f"{i + 1}", occurred_on=f"2026-01-0{i + 1}"))
    r = me.get("/v1/ledger/entries", params={"limit": 3})
    page1 = r.json()
    assert [e["occurred_on"] for e in page1["items"]] == ["2026-01-07", "2026-01-06", "2026-01-05"]
    page2 = me.get("/v1/ledger/entries", params={"limit": 3, "cursor": page1["next_cursor"]}).json()
    page3 = me.get("/v1/ledger/entries", params={"limit": 3, "cursor": page2["next_cursor"]}).json()
    assert page3["next_cursor"] is None
    ids = [e["id"] for p in (page1, page2, page3) for e in p["items"]]
    assert sorted(ids) == sorted(e["id"] for e in made) and len(set(ids)) == 7
    only_eur = me.get("/v1/ledger/entries", params={"currency": "EUR"}).json()["items"]
    assert {e["currency"] for e in only_eur} == {"EUR"} and len(only_eur) == 3
    ali = me.get("/v1/ledger/entries", params={"contact": "name:ali"}).json()["items"]
    assert len(ali) == 3 and {e["counterparty"]["name"] for e in ali} == {"Ali"}
    window = me.get("/v1/ledger/entries", params={"from": "2026-01-02", "to": "2026-01-04"}).json()["items"]
    assert [e["occurred_on"] for e in window] == ["2026-01-04", "2026-01-03", "2026-01-02"]
    assert me.get("/v1/ledger/entries", params={"status": "settled"}).json()["items"] == []
    for params, field in (({"currency": "ZZZ"}, "currency"), ({"status": "gone"}, "status"), ({"from": "2026-02-01", "to": "2026-01-01"}, "from"),
                          ({"cursor": "!!"}, "cursor"), ({"limit": 0}, "limit"), ({"contact": "ali"}, "contact")):
        r = me.get("/v1/ledger/entries", params=params)
        assert r.status_code == 400, (params, r.text)
        assert r.json()["errors"][0]["field"] == field


def test_edit_and_delete(ledger, new_entry, db):
    me = ledger()
    e = new_entry(me)
    r = me.patch(f"/v1/ledger/entries/{e['id']}", json={"amount": "25", "note": "dinner", "counterparty_name": "Ali B"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["amount"] == "25.00" and body["note"] == "dinner" and body["contact"] == "name:ali b"
    r = me.patch(f"/v1/ledger/entries/{e['id']}", json={"currency": "JPY"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "amount"  # 25.00 has decimals JPY lacks
    r = me.patch(f"/v1/ledger/entries/{e['id']}", json={"amount": "2500", "currency": "JPY"})
    assert r.status_code == 200 and r.json()["amount"] == "2500" and r.json()["currency"] == "JPY"
    for bad, field in (({"amount": "1.5"}, "amount"), ({"amount": "-1"}, "amount"), ({"currency": "QQQ"}, "currency"), ({"amount": None}, "amount"), ({"note": "\x00"}, "note")):
        r = me.patch(f"/v1/ledger/entries/{e['id']}", json=bad)
        assert r.status_code == 400, r.text
        assert r.json()["errors"][0]["field"] == field
    assert me.patch(f"/v1/ledger/entries/{e['id']}", json={}).status_code == 400
    assert me.get(f"/v1/ledger/entries/{e['id']}").json()["amount"] == "2500"
    assert me.delete(f"/v1/ledger/entries/{e['id']}").status_code == 204
    assert me.get(f"/v1/ledger/entries/{e['id']}").status_code == 404
    assert me.delete(f"/v1/ledger/entries/{e['id']}").status_code == 404
    assert count_rows(db, me.uid) == 0


def test_another_users_entry_is_404_on_every_route(ledger, new_entry, db):
    alice, mallory = ledger(), ledger()
    e = new_entry(alice)
    eid = e["id"]
    calls = [
        ("GET", f"/v1/ledger/entries/{eid}", None),
        ("PATCH", f"/v1/ledger/entries/{eid}", {"amount": "1"}),
        ("DELETE", f"/v1/ledger/entries/{eid}", None),
        ("POST", f"/v1/ledger/entries/{eid}/settle", {}),
        ("POST", f"/v1/ledger/entries/{eid}/undo", None),
        ("POST", f"/v1/ledger/entries/{eid}/dispute", {"reason": "never"}),
        ("DELETE", f"/v1/ledger/entries/{eid}/dispute", None),
        ("GET", "/v1/ledger/balances/name:ali", None),
    ]
    for method, path, body in calls:
        r = mallory(method, path, json=body) if body is not None else mallory(method, path)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    assert mallory.get("/v1/ledger/entries").json()["items"] == []
    assert mallory.get("/v1/ledger/balances").json()["items"] == []
    assert mallory.get("/v1/ledger/export.csv").text.count("\r\n") == 1  # header only
    row = db.execute("SELECT amount_minor, status, disputed FROM ledger.entries WHERE id = %s", (eid,)).fetchone()
    assert row == (2000, "open", False)
    # Garbage ids are 404 as well, never 500.
    for path in ("/v1/ledger/entries/not-a-uuid", "/v1/ledger/entries/" + "9" * 64):
        assert mallory.get(path).status_code == 404


def test_requests_without_the_internal_token_are_401(ledger_svc, http):
    for method, path in (("GET", "/v1/ledger/entries"), ("POST", "/v1/ledger/entries"), ("GET", "/v1/ledger/balances")):
        r = http.request(method, ledger_svc.url + path)
        assert r.status_code == 401


def test_idempotent_create(ledger, db):
    me = ledger()
    body = {"counterparty_name": "Ali", "direction": "i_owe_them", "amount": "3.10", "currency": "EUR"}
    h = {"Idempotency-Key": "k-" + new_uid()}
    a = me.post("/v1/ledger/entries", json=body, headers=h)
    b = me.post("/v1/ledger/entries", json=body, headers=h)
    assert a.status_code == b.status_code == 201 and a.json()["id"] == b.json()["id"]
    assert count_rows(db, me.uid) == 1


def test_due_date_saves_entry_and_notes_reminder_error_when_reminders_is_down(ledger, db):
    me = ledger()
    r = me.post("/v1/ledger/entries", json={"counterparty_name": "Ali", "direction": "they_owe_me", "amount": "5", "currency": "USD", "due_at": "2030-05-01T10:00:00+02:00"})
    assert r.status_code == 201, r.text
    e = r.json()
    assert e["due_at"].startswith("2030-05-01T08:00:00")
    assert e["reminder_id"] is None and e["reminder_error"] and "reminders" in e["reminder_error"]
    assert count_rows(db, me.uid) == 1


def test_writes_publish_ledger_events(ledger, new_entry, rds):
    import json

    from eindr_common.events import stream_name

    me = ledger()
    e = new_entry(me, amount="2")
    me.post(f"/v1/ledger/entries/{e['id']}/settle")
    me.delete(f"/v1/ledger/entries/{e['id']}")
    seen = [(f["type"], json.loads(f["payload"])) for _, f in rds.xrange(stream_name("ledger"))]
    mine = [(t, p) for t, p in seen if p.get("owner_id") == me.uid]
    assert [t for t, _ in mine] == ["ledger.entry_created", "ledger.entry_settled", "ledger.entry_deleted"]
    assert mine[0][1]["amount"] == "2.00" and mine[0][1]["currency"] == "USD" and mine[0][1]["entry_id"] == e["id"]


def test_health_readiness_and_domain_metrics(ledger_svc, ledger, new_entry, http):
    new_entry(ledger(), currency="KWD", amount="1.5")
    assert http.get(ledger_svc.url + "/healthz").json() == {"status": "ok"}
    ready = http.get(ledger_svc.url + "/readyz").json()
    assert ready["status"] == "ok" and ready["checks"] == {"postgres": "ok", "redis": "ok"}
    text = http.get(ledger_svc.url + "/metrics").text
    assert 'eindr_ledger_entries_created_total{currency="KWD"}' in text
    assert 'route="/v1/ledger/entries"' in text
