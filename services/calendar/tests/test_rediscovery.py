"""Calendars created on the account after connecting show up (and deleted ones go): a run
reads the account's calendar list again once it is stale, and reading the connections
through the API makes a list older than a few minutes stale at once."""

from __future__ import annotations

from datetime import timedelta

from .conftest import future, ics


def _age_calendar_list(db, connection_id: str, minutes: int) -> None:
    """The calendar list was read ``minutes`` ago (instead of waiting that long)."""
    db.execute("UPDATE calendar.connections SET calendars_checked_at = now() - make_interval(mins => %s) WHERE id = %s",
               (minutes, connection_id))


def test_caldav_calendar_created_after_connecting_shows_up_when_the_connections_are_read(make_user, caldav_connect, dav_user, db):
    user = make_user()
    conn = caldav_connect(user, dav_user)
    assert [c["name"] for c in conn["calendars"]] == ["Personal"]
    work = dav_user.client.principal().make_calendar(name="Work")
    work.add_event(ics("work-1", "Quarterly review", future(), alarm="-PT5M"))

    # a list read a minute ago is fresh: reading the connections changes nothing
    _age_calendar_list(db, conn["id"], 1)
    assert user.cal.get("/v1/calendar/connections").json()["items"][0]["calendars_checked_at"] is not None
    # five minutes and more: it is read again by the next run (the worker is woken too)
    _age_calendar_list(db, conn["id"], 10)
    listed = user.cal.get("/v1/calendar/connections").json()["items"][0]
    assert listed["calendars_checked_at"] is None
    user.sync(conn["id"])
    got = user.cal.get(f"/v1/calendar/connections/{conn['id']}").json()
    cals = {c["name"]: c for c in got["calendars"]}
    assert set(cals) == {"Personal", "Work"} and got["calendars_checked_at"] is not None
    assert cals["Work"]["sync_enabled"] and not cals["Work"]["is_target"] and cals["Personal"]["is_target"]
    assert [r["title"] for r in user.reminders()] == ["Quarterly review"]  # its events are synced like the others'

    # the calendar is deleted on the server: it leaves the connection, its reminders stay
    work.delete()
    _age_calendar_list(db, conn["id"], 120)  # older than EINDR_CALENDAR_REDISCOVER_S: the run reads the list itself
    run = user.sync(conn["id"])
    assert run["status"] == "succeeded", run
    got = user.cal.get(f"/v1/calendar/connections/{conn['id']}").json()
    assert [c["name"] for c in got["calendars"]] == ["Personal"] and got["calendars"][0]["is_target"]
    assert [r["title"] for r in user.reminders()] == ["Quarterly review"]


def test_google_calendar_created_after_connecting_is_synced_with_its_own_channel(make_user, google_connect, gapi, db):
    user = make_user()
    conn = google_connect(user)
    account = conn["username"].split("@")[0]
    new_id = f"trips.{conn['username']}"
    gapi.post(f"/_test/accounts/{account}/calendars", json={"id": new_id, "summary": "Trips"})
    gapi.post(f"/_test/accounts/{account}/calendars", json={"id": f"shared.{conn['username']}", "summary": "Shared", "accessRole": "reader"})
    gapi.post(f"/_test/calendars/{new_id}/events", json={
        "summary": "Flight to Lisbon", "start": {"dateTime": future().isoformat().replace("+00:00", "Z")},
        "end": {"dateTime": (future() + timedelta(hours=2)).isoformat().replace("+00:00", "Z")},
        "reminders": {"useDefault": False, "overrides": [{"method": "popup", "minutes": 120}]}})
    _age_calendar_list(db, conn["id"], 120)
    user.sync(conn["id"])
    got = user.cal.get(f"/v1/calendar/connections/{conn['id']}").json()
    cals = {c["remote_id"]: c for c in got["calendars"]}
    assert new_id in cals and f"shared.{conn['username']}" not in cals  # read-only calendars stay out, as at connect time
    assert cals[new_id]["name"] == "Trips" and cals[new_id]["sync_enabled"] and cals[new_id]["push_channel_expires_at"]
    assert [r["title"] for r in user.reminders()] == ["Flight to Lisbon"]
    assert any(c["calendar"] == new_id for c in gapi.get("/_test/state").json()["channels"])
