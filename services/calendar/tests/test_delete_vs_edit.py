"""Delete vs edit: one side deleted (in Eindr: deleted or cancelled) what the other edited
since the last sync. The edit wins, whatever the timestamps; the deleted side gets the
edited version back, and the conflict log records it (kind ``delete_vs_edit``, the deleted
side's version ``{"deleted": true, ...}``). Against the real Radicale and the local Google
wire-format server, with the real worker consuming the reminders service's events."""

from __future__ import annotations

import re

from .conftest import future, ics


def _retitle(ev, summary: str) -> None:
    ev.data = re.sub(r"SUMMARY:[^\r\n]*", f"SUMMARY:{summary}", ev.data, count=1)
    ev.save()


def _summaries(dav_user) -> list[str]:
    return sorted(m.group(1) for e in dav_user.events() for m in [re.search(r"^SUMMARY:(.*?)\r?$", e.data, re.MULTILINE)] if m)


def _pushed(user, caldav_connect, dav_user, waiter, sync_state, title: str):
    conn = caldav_connect(user, dav_user)
    r = user.rem.post("/v1/reminders", json={"title": title, "due_at": future(72).isoformat(), "alarms": ["-15m"]})
    assert r.status_code == 201, r.text
    diagnose = lambda: sync_state.describe(conn["id"])
    waiter(lambda: _summaries(dav_user) == [title], message="event written", diagnose=diagnose)
    waiter(lambda: sync_state.idle(conn["id"]), message="worker idle after writing the event", diagnose=diagnose)
    return conn, r.json(), diagnose


def test_an_eindr_edit_beats_a_deletion_in_the_calendar(make_user, caldav_connect, dav_user, waiter, sync_state, calendar_worker):
    user = make_user()
    conn, reminder, diagnose = _pushed(user, caldav_connect, dav_user, waiter, sync_state, "Call the plumber")
    dav_user.events()[0].delete()  # deleted in the calendar app ...
    r = user.rem.patch(f"/v1/reminders/{reminder['id']}", json={"title": "Call the plumber at 9"})  # ... edited in Eindr
    assert r.status_code == 200
    waiter(lambda: _summaries(dav_user) == ["Call the plumber at 9"], message="event written again", diagnose=diagnose)
    conflicts = waiter(lambda: user.cal.get("/v1/calendar/conflicts").json()["items"], message="conflict logged", diagnose=diagnose)
    assert len(conflicts) == 1
    c = conflicts[0]
    assert c["kind"] == "delete_vs_edit" and c["winner"] == "eindr" and c["reminder_id"] == reminder["id"]
    assert c["remote_version"]["deleted"] is True and c["eindr_version"]["title"] == "Call the plumber at 9"
    got = user.rem.get(f"/v1/reminders/{reminder['id']}").json()
    assert got["status"] == "scheduled" and got["title"] == "Call the plumber at 9"
    waiter(lambda: sync_state.idle(conn["id"]), message="worker idle", diagnose=diagnose)
    again = user.sync(conn["id"])  # settled: the re-written event is linked, nothing more to do
    assert again["changes_in"] == 0 and again["changes_out"] == 0, again
    assert len(user.cal.get("/v1/calendar/conflicts").json()["items"]) == 1


def test_a_calendar_edit_beats_a_cancel_in_eindr(make_user, caldav_connect, dav_user, waiter, sync_state, calendar_worker):
    user = make_user()
    conn, reminder, diagnose = _pushed(user, caldav_connect, dav_user, waiter, sync_state, "Pick up parcel")
    _retitle(dav_user.events()[0], "Pick up parcel at the post office")  # edited in the calendar app ...
    r = user.rem.post(f"/v1/reminders/{reminder['id']}/cancel", json={"scope": "series"})  # ... cancelled in Eindr
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    conflicts = waiter(lambda: user.cal.get("/v1/calendar/conflicts").json()["items"], message="conflict logged", diagnose=diagnose)
    c = conflicts[0]
    assert c["kind"] == "delete_vs_edit" and c["winner"] == "remote"
    assert c["eindr_version"]["deleted"] is True and c["eindr_version"]["status"] == "cancelled"
    assert c["remote_version"]["summary"] == "Pick up parcel at the post office"
    got = user.rem.get(f"/v1/reminders/{reminder['id']}").json()  # reopened, with the calendar's version
    assert got["status"] == "scheduled" and got["title"] == "Pick up parcel at the post office"
    assert _summaries(dav_user) == ["Pick up parcel at the post office"]  # the event stays
    waiter(lambda: sync_state.idle(conn["id"]), message="worker idle", diagnose=diagnose)
    assert user.sync(conn["id"])["changes_out"] == 0
    assert _summaries(dav_user) == ["Pick up parcel at the post office"]


def test_an_imported_event_edited_after_its_reminder_was_deleted_comes_back(make_user, caldav_connect, dav_user, waiter,
                                                                            sync_state, calendar_worker):
    user = make_user()
    conn = caldav_connect(user, dav_user)
    dav_user.add(ics("bday-1", "Buy a present", future(72)))
    user.sync(conn["id"])
    [imported] = user.reminders()
    _retitle(dav_user.by_uid("bday-1"), "Buy a present for Sam")
    assert user.rem.delete(f"/v1/reminders/{imported['id']}").status_code == 204
    user.sync(conn["id"])
    # made again by this run's pull, or by the worker's run that the reminder.deleted event started
    back = waiter(lambda: [r for r in user.reminders() if r["title"] == "Buy a present for Sam"], message="reminder made again",
                  diagnose=lambda: sync_state.describe(conn["id"]))
    assert len(back) == 1 and back[0]["id"] != imported["id"] and back[0]["source"] == "calendar"
    [c] = user.cal.get("/v1/calendar/conflicts").json()["items"]
    assert c["kind"] == "delete_vs_edit" and c["winner"] == "remote" and c["eindr_version"]["status"] == "deleted"
    assert c["reminder_id"] == back[0]["id"]
    assert _summaries(dav_user) == ["Buy a present for Sam"]
    # a plain deletion (nothing edited since) still simply deletes the event
    waiter(lambda: sync_state.idle(conn["id"]), message="worker idle", diagnose=lambda: sync_state.describe(conn["id"]))
    assert user.rem.delete(f"/v1/reminders/{back[0]['id']}").status_code == 204
    waiter(lambda: _summaries(dav_user) == [], message="event deleted", diagnose=lambda: sync_state.describe(conn["id"]))
    assert len(user.cal.get("/v1/calendar/conflicts").json()["items"]) == 1


def test_google_deletion_loses_to_an_eindr_edit(make_user, google_connect, gapi, waiter, sync_state, calendar_worker):
    user = make_user()
    conn = google_connect(user)
    cal = conn["username"]
    diagnose = lambda: sync_state.describe(conn["id"])
    r = user.rem.post("/v1/reminders", json={"title": "Renew insurance", "due_at": future(120).isoformat(), "alarms": ["-1d"]})
    assert r.status_code == 201
    reminder = r.json()

    def live_events():
        return [e for e in gapi.get(f"/_test/calendars/{cal}/events").json()
                if e["status"] != "cancelled" and e.get("extendedProperties", {}).get("private", {}).get("eindrReminderId") == reminder["id"]]

    [ev] = waiter(live_events, message="event written to Google", diagnose=diagnose)
    waiter(lambda: sync_state.idle(conn["id"]), message="worker idle", diagnose=diagnose)
    # deleted in Google (its push notification is late: no run sees it before Eindr's edit) ...
    gapi.delete(f"/_test/calendars/{cal}/events/{ev['id']}", params={"notify": "false"})
    assert user.rem.patch(f"/v1/reminders/{reminder['id']}", json={"title": "Renew car insurance"}).status_code == 200
    [again] = waiter(lambda: [e for e in live_events() if e["summary"] == "Renew car insurance"], message="event written again",
                     diagnose=diagnose)
    assert again["id"] != ev["id"]
    conflicts = waiter(lambda: user.cal.get("/v1/calendar/conflicts").json()["items"], message="conflict logged", diagnose=diagnose)
    assert [(c["kind"], c["winner"]) for c in conflicts] == [("delete_vs_edit", "eindr")]
    assert user.rem.get(f"/v1/reminders/{reminder['id']}").json()["status"] == "scheduled"
