"""A due date on an entry creates a reminder in the real reminders service (started here
as its own process); when reminders is down the entry is saved and reminder_error says
why (see test_entries)."""

from __future__ import annotations

import httpx
from eindr_common.localstack import free_port
from eindr_common.testing import auth_headers, new_uid


def test_due_date_creates_a_reminder_for_the_owner(start_service, friends_svc):
    dead = f"http://127.0.0.1:{free_port()}"
    reminders = start_service("reminders", "eindr_reminders.app:create_app", env={"EINDR_USERS_URL": dead, "EINDR_AUTH_URL": dead})
    ledger = start_service("ledger", "eindr_ledger.app:create_app", env={"EINDR_FRIENDS_URL": friends_svc.url, "EINDR_REMINDERS_URL": reminders.url})
    uid = new_uid()
    with httpx.Client(timeout=30) as http:
        r = http.post(ledger.url + "/v1/ledger/entries", headers=auth_headers(uid, "ledger"), json={
            "counterparty_name": "Ali", "direction": "they_owe_me", "amount": "12.5", "currency": "EUR", "due_at": "2031-02-03T09:00:00+01:00",
        })
        assert r.status_code == 201, r.text
        entry = r.json()
        assert entry["reminder_error"] is None and entry["reminder_id"]
        got = http.get(f"{reminders.url}/v1/reminders/{entry['reminder_id']}", headers=auth_headers(uid, "reminders"))
        assert got.status_code == 200, got.text
        reminder = got.json()
        assert reminder["title"] == "Ali owes you 12.50 EUR"
        assert reminder["due_at"].startswith("2031-02-03T08:00:00")
        # Another user cannot see that reminder.
        assert http.get(f"{reminders.url}/v1/reminders/{entry['reminder_id']}", headers=auth_headers(new_uid(), "reminders")).status_code == 404
        # A new due date on edit makes a new reminder (same idempotency key → same reminder
        # would be replayed, so the key carries the due date).
        r = http.patch(f"{ledger.url}/v1/ledger/entries/{entry['id']}", headers=auth_headers(uid, "ledger"), json={"due_at": "2031-03-01T09:00:00+00:00"})
        assert r.status_code == 200 and r.json()["reminder_id"] and r.json()["reminder_id"] != entry["reminder_id"]
        new_id = r.json()["reminder_id"]
        # The moved reminder is cancelled; settling in full cancels the current one.
        assert http.get(f"{reminders.url}/v1/reminders/{entry['reminder_id']}", headers=auth_headers(uid, "reminders")).json()["status"] == "cancelled"
        r = http.post(f"{ledger.url}/v1/ledger/entries/{entry['id']}/settle", headers=auth_headers(uid, "ledger"))
        assert r.status_code == 201 and r.json()["entry"]["status"] == "settled"
        assert http.get(f"{reminders.url}/v1/reminders/{new_id}", headers=auth_headers(uid, "reminders")).json()["status"] == "cancelled"
