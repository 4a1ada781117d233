"""Both sides changed since the last sync: the later modification (each source's own
timestamp) wins, and both versions are kept in the conflict log the user can read."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from .conftest import future


def _edit_event(ev, summary: str, modified: datetime) -> None:
    data = re.sub(r"SUMMARY:[^\r\n]*", f"SUMMARY:{summary}", ev.data, count=1)
    data = re.sub(r"LAST-MODIFIED:[^\r\n]*", f"LAST-MODIFIED:{modified:%Y%m%dT%H%M%SZ}", data, count=1)
    ev.data = data
    ev.save()


def _pushed(user, caldav_connect, dav_user, waiter, sync_state, title: str):
    conn = caldav_connect(user, dav_user)
    r = user.rem.post("/v1/reminders", json={"title": title, "due_at": future(72).isoformat(), "alarms": ["-15m"]})
    assert r.status_code == 201, r.text
    reminder = r.json()  # the reminders service publishes reminder.created; the worker writes the event
    diagnose = lambda: sync_state.describe(conn["id"])
    waiter(lambda: any(title in e.data for e in dav_user.events()), message="event written", diagnose=diagnose)
    # The run that wrote the event goes on to pull the calendar: an edit made before it ends
    # would be synced as a plain calendar edit, not a conflict. "Both sides changed since the
    # last sync" starts once the worker is done with this connection.
    waiter(lambda: sync_state.idle(conn["id"]), message="worker idle after writing the event", diagnose=diagnose)
    ev = next(e for e in dav_user.events() if title in e.data)
    return conn, reminder, ev, diagnose


def test_calendar_edit_later_than_eindr_edit_wins(make_user, caldav_connect, dav_user, waiter, sync_state, calendar_worker):
    user = make_user()
    conn, reminder, ev, diagnose = _pushed(user, caldav_connect, dav_user, waiter, sync_state, "Book tickets")
    # Both sides change before either is synced. The calendar's own clock stamps its edit
    # later than Eindr's (LAST-MODIFIED is the source's timestamp, whatever its skew) ...
    _edit_event(ev, "Book tickets (calendar)", datetime.now(UTC) + timedelta(seconds=30))
    # ... then Eindr's edit reaches the worker, whose conditional PUT fails (412)
    r = user.rem.patch(f"/v1/reminders/{reminder['id']}", json={"title": "Book tickets (Eindr)"})
    assert r.status_code == 200
    eindr_at = datetime.fromisoformat(r.json()["updated_at"])
    conflicts = waiter(lambda: user.cal.get("/v1/calendar/conflicts").json()["items"], message="conflict logged", diagnose=diagnose)
    assert len(conflicts) == 1
    c = conflicts[0]
    assert c["winner"] == "remote" and c["reminder_id"] == reminder["id"]
    assert c["eindr_version"]["title"] == "Book tickets (Eindr)" and c["remote_version"]["summary"] == "Book tickets (calendar)"
    assert datetime.fromisoformat(c["remote_modified_at"]) > eindr_at
    waiter(lambda: user.rem.get(f"/v1/reminders/{reminder['id']}").json()["title"] == "Book tickets (calendar)", message="reminder patched", diagnose=diagnose)
    # and once settled, a run is quiet: the winner was recorded on both sides
    again = user.cal.post(f"/v1/calendar/connections/{conn['id']}/sync").json()
    assert again["changes_in"] == 0 and again["changes_out"] == 0, again
    assert len(user.cal.get("/v1/calendar/conflicts").json()["items"]) == 1
    assert any("SUMMARY:Book tickets (calendar)" in e.data for e in dav_user.events())


def test_eindr_edit_later_than_calendar_edit_wins(make_user, caldav_connect, dav_user, waiter, sync_state, calendar_worker):
    user = make_user()
    other = make_user()
    conn, reminder, ev, diagnose = _pushed(user, caldav_connect, dav_user, waiter, sync_state, "Renew passport")
    # the calendar side changes first (not synced yet: CalDAV has no push) ...
    _edit_event(ev, "Renew passport (calendar)", datetime.now(UTC) - timedelta(seconds=30))
    # ... then the reminder, later; its event reaches the worker, whose conditional PUT
    # fails (412): both changed, Eindr's is later and wins
    r = user.rem.patch(f"/v1/reminders/{reminder['id']}", json={"title": "Renew passport (Eindr)"})
    assert r.status_code == 200
    waiter(lambda: any("SUMMARY:Renew passport (Eindr)" in e.data for e in dav_user.events()), message="Eindr version written", diagnose=diagnose)
    conflicts = waiter(lambda: user.cal.get("/v1/calendar/conflicts").json()["items"], message="conflict logged", diagnose=diagnose)
    assert conflicts[0]["winner"] == "eindr"
    assert conflicts[0]["remote_version"]["summary"] == "Renew passport (calendar)"
    assert user.rem.get(f"/v1/reminders/{reminder['id']}").json()["title"] == "Renew passport (Eindr)"
    assert len(dav_user.events()) == 1
    assert other.cal.get("/v1/calendar/conflicts").json()["items"] == []  # another user's log is empty
    assert other.cal.get(f"/v1/calendar/conflicts?connection_id={conn['id']}").status_code == 404
