"""Habit detection end to end: seeded histories through the API, the real embedding server,
the worker's habit job, GET /v1/suggestions, dismiss, and accept through the real
reminders service."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from eindr_common.testing import auth_headers

AMS = ZoneInfo("Europe/Amsterdam")


def _last_sundays(n: int, hour: int, minute: int) -> list[datetime]:
    today = datetime.now(AMS)
    last_sunday = (today - timedelta(days=(today.weekday() - 6) % 7 or 7)).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return [last_sunday - timedelta(weeks=i) for i in range(n)]


def _reminder(client, api, h, title: str, due: datetime, **slots):
    r = client.post(api.url + "/v1/history", headers=h, json={
        "transcript": f"remind me to {title.lower()}",
        "intent": "create_reminder",
        "outcome": "success",
        "slots": {"title": title, "due_at": due.isoformat(), "timezone": "Europe/Amsterdam", **slots},
        "occurred_at": (due.astimezone(UTC) - timedelta(hours=3)).isoformat(),
    })
    assert r.status_code == 201, r.text


def _suggestions(client, api, h, status="pending"):
    return client.get(api.url + "/v1/suggestions", params={"status": status}, headers=h).json()["items"]


def test_a_weekly_habit_is_suggested_and_accepted_as_a_recurring_reminder(client, history_api, history_worker, reminders_svc, user, other_user, poll):
    uid, h = user
    for due, title in zip(_last_sundays(3, 18, 0), ("Call mum", "call my mum", "Call mum")):
        _reminder(client, history_api, h, title, due + timedelta(minutes=5))
    items = poll(lambda: _suggestions(client, history_api, h), lambda s: len(s) == 1)
    s = items[0]
    assert s["title"].lower() == "call mum" and s["weekday"] == 6 and s["time"] == "18:00" and s["timezone"] == "Europe/Amsterdam"
    assert s["rrule"] == "FREQ=WEEKLY;BYDAY=SU;BYHOUR=18;BYMINUTE=0" and s["occurrences"] == 3
    assert s["text"] == "Make &#x27;Call mum&#x27; a weekly reminder on Sundays at 18:00?"

    # Another user sees nothing of it and cannot act on it.
    ob = other_user[1]
    assert _suggestions(client, history_api, ob, "all") == []
    assert client.post(f"{history_api.url}/v1/suggestions/{s['id']}/accept", headers=ob).status_code == 404
    assert client.post(f"{history_api.url}/v1/suggestions/{s['id']}/dismiss", headers=ob).status_code == 404

    r = client.post(f"{history_api.url}/v1/suggestions/{s['id']}/accept", headers=h)
    assert r.status_code == 200, r.text
    accepted = r.json()
    assert accepted["status"] == "accepted" and accepted["reminder_id"]
    again = client.post(f"{history_api.url}/v1/suggestions/{s['id']}/accept", headers=h).json()
    assert again["reminder_id"] == accepted["reminder_id"]  # idempotent
    rem = client.get(f"{reminders_svc.url}/v1/reminders/{accepted['reminder_id']}", headers=auth_headers(uid, "reminders"))
    assert rem.status_code == 200, rem.text
    body = rem.json()
    assert body["title"] == s["title"] and "FREQ=WEEKLY" in body["rrule"] and "BYDAY=SU" in body["rrule"]
    assert body["timezone"] == "Europe/Amsterdam"
    assert client.post(f"{history_api.url}/v1/suggestions/{s['id']}/dismiss", headers=h).status_code == 409
    assert _suggestions(client, history_api, h) == []


def test_no_suggestion_without_a_habit(client, history_api, history_worker, user, poll, db):
    _uid, h = user
    sundays = _last_sundays(3, 9, 30)
    # Only twice; three different things; a recurring one already; three different weekdays.
    _reminder(client, history_api, h, "Water the plants", sundays[0])
    _reminder(client, history_api, h, "Water the plants", sundays[1])
    for due, title in zip(_last_sundays(3, 13, 0), ("Pay the rent", "Buy dog food", "Book a haircut")):
        _reminder(client, history_api, h, title, due)
    for due in _last_sundays(3, 20, 0):
        _reminder(client, history_api, h, "Take out the bins", due, rrule="FREQ=WEEKLY;BYDAY=SU")
    for i, due in enumerate(_last_sundays(3, 7, 0)):
        _reminder(client, history_api, h, "Go for a run", due + timedelta(days=i + 1))
    # A marker habit for the same user, seeded last: once it shows up, the job has run over
    # everything above.
    for due in _last_sundays(3, 22, 0):
        _reminder(client, history_api, h, "Set the alarm", due)
    items = poll(lambda: _suggestions(client, history_api, h), lambda s: len(s) >= 1)
    assert [s["title"] for s in items] == ["Set the alarm"]


def test_a_dismissed_habit_is_never_suggested_again(client, history_api, history_worker, user, poll, db):
    _uid, h = user
    sundays = _last_sundays(4, 11, 0)
    for due in sundays[1:]:
        _reminder(client, history_api, h, "Call grandpa", due)
    s = poll(lambda: _suggestions(client, history_api, h), lambda s: len(s) == 1)[0]
    r = client.post(f"{history_api.url}/v1/suggestions/{s['id']}/dismiss", headers=h)
    assert r.status_code == 200 and r.json()["status"] == "dismissed"
    assert client.post(f"{history_api.url}/v1/suggestions/{s['id']}/accept", headers=h).status_code == 409
    # The habit goes on (a fourth time, a slightly different wording), plus a marker habit.
    _reminder(client, history_api, h, "call grandpa please", sundays[0])
    for due in _last_sundays(3, 16, 0):
        _reminder(client, history_api, h, "Feed the fish", due)
    items = poll(lambda: _suggestions(client, history_api, h), lambda s: len(s) >= 1)
    assert [i["title"] for i in items] == ["Feed the fish"]
    assert [i["status"] for i in _suggestions(client, history_api, h, "all") if i["id"] == s["id"]] == ["dismissed"]
    assert client.post(f"{history_api.url}/v1/suggestions/{uuid.uuid4()}/dismiss", headers=h).status_code == 404
