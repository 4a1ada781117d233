"""One edited occurrence of a recurring event: an iCalendar RECURRENCE-ID override (CalDAV,
real Radicale) or a Google instance exception (recurringEventId + originalStartTime, local
wire-format server). The series' reminder skips that occurrence (EXDATE) and the moved
occurrence is a reminder of its own; cancelled occurrences are EXDATEs only; writing the
series back from Eindr keeps the overrides; removing an override deletes its reminder."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

CRLF = "\r\n"
ZONE = "Europe/Amsterdam"


def _naive(values) -> set[datetime]:
    return {datetime.fromisoformat(str(v)).replace(tzinfo=None) for v in values}


def _local(dt: datetime) -> str:
    return dt.strftime("%Y%m%dT%H%M%S")


def _vevent(uid: str, summary: str, start: datetime, *, rid: datetime | None = None, rrule: str | None = None,
            alarm: str | None = None, status: str | None = None) -> list[str]:
    lines = ["BEGIN:VEVENT", f"UID:{uid}", f"DTSTAMP:{datetime.now(UTC):%Y%m%dT%H%M%SZ}",
             f"DTSTART;TZID={ZONE}:{_local(start)}", "DURATION:PT45M", f"SUMMARY:{summary}", "LOCATION:Studio 2"]
    if rid is not None:
        lines.append(f"RECURRENCE-ID;TZID={ZONE}:{_local(rid)}")
    if rrule:
        lines.append(f"RRULE:{rrule}")
    if status:
        lines.append(f"STATUS:{status}")
    if alarm:
        lines += ["BEGIN:VALARM", "ACTION:DISPLAY", "DESCRIPTION:x", f"TRIGGER:{alarm}", "END:VALARM"]
    return lines + ["END:VEVENT"]


def _object(*vevents: list[str]) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN"]
    for v in vevents:
        lines += v
    return CRLF.join([*lines, "END:VCALENDAR", ""])


def test_caldav_override_becomes_its_own_reminder_and_the_series_skips_it(
        make_user, caldav_connect, dav_user, calendar_worker, waiter, sync_state):
    user = make_user()
    conn = caldav_connect(user, dav_user)
    first = (datetime.now(UTC) + timedelta(days=3)).replace(hour=17, minute=0, second=0, microsecond=0, tzinfo=None)
    second, third = first + timedelta(days=7), first + timedelta(days=14)
    moved = second + timedelta(days=1, hours=2)
    series = _vevent("yoga-1", "Yoga", first, rrule="FREQ=WEEKLY;COUNT=8", alarm="-PT10M")
    dav_user.add(_object(series,
                         _vevent("yoga-1", "Yoga (moved)", moved, rid=second),  # no alarm of its own: rings like its series
                         _vevent("yoga-1", "Yoga", third, rid=third, status="CANCELLED")))
    user.sync(conn["id"])
    diagnose = lambda: sync_state.describe(conn["id"])

    def mapped():
        rems = {r["title"]: r for r in user.reminders()}
        return rems if set(rems) == {"Yoga", "Yoga (moved)"} else None

    rems = waiter(mapped, message="series and moved occurrence imported", diagnose=diagnose)
    yoga, moved_rem = rems["Yoga"], rems["Yoga (moved)"]
    assert yoga["rrule"] and yoga["timezone"] == ZONE
    assert datetime.fromisoformat(yoga["local_due"]).replace(tzinfo=None) == first
    assert _naive(yoga["exdates"]) == {second, third}  # the moved and the cancelled occurrence
    assert moved_rem["rrule"] is None and moved_rem["source"] == "calendar"
    assert datetime.fromisoformat(moved_rem["local_due"]).replace(tzinfo=None) == moved and moved_rem["timezone"] == ZONE
    assert moved_rem["alarms"] == ["-10m"]

    # the occurrence is moved again in the calendar: only its own reminder follows
    ev = dav_user.by_uid("yoga-1")
    later = moved + timedelta(hours=1)
    ev.data = _object(series, _vevent("yoga-1", "Yoga (moved)", later, rid=second),
                      _vevent("yoga-1", "Yoga", third, rid=third, status="CANCELLED"))
    ev.save()
    user.sync(conn["id"])
    waiter(lambda: datetime.fromisoformat(user.rem.get(f"/v1/reminders/{moved_rem['id']}").json()["local_due"]).replace(tzinfo=None) == later,
           message="moved occurrence's reminder follows", diagnose=diagnose)
    assert len(user.reminders()) == 2
    assert _naive(user.rem.get(f"/v1/reminders/{yoga['id']}").json()["exdates"]) == {second, third}

    # Eindr edits the series and the moved occurrence: both are written into the same
    # calendar object, which keeps its overrides and the properties Eindr does not sync
    assert user.rem.patch(f"/v1/reminders/{yoga['id']}", json={"title": "Yoga class"}).status_code == 200
    assert user.rem.patch(f"/v1/reminders/{moved_rem['id']}", json={"title": "Yoga class (moved)"}).status_code == 200

    def written():
        data = dav_user.by_uid("yoga-1").data
        return data if re.search(r"^SUMMARY:Yoga class\r?$", data, re.MULTILINE) and "SUMMARY:Yoga class (moved)" in data else None

    data = waiter(written, message="series and occurrence written back", diagnose=diagnose)
    assert len(re.findall(r"^RECURRENCE-ID", data, re.MULTILINE)) == 2
    assert data.count("LOCATION:Studio 2") == 3
    assert f"EXDATE;TZID={ZONE}:{_local(second)}" not in data  # an EXDATE would hide the override
    waiter(lambda: sync_state.idle(conn["id"]), message="worker idle", diagnose=diagnose)
    again = user.sync(conn["id"])
    assert again["changes_in"] == 0 and again["changes_out"] == 0, again
    assert len(user.reminders()) == 2

    # the override is removed (the occurrence is back in the series): its reminder goes and
    # the series no longer skips it
    ev = dav_user.by_uid("yoga-1")
    text = ev.data
    blocks = re.findall(r"BEGIN:VEVENT.*?END:VEVENT\r?\n", text, re.DOTALL)
    kept = [b for b in blocks if "Yoga class (moved)" not in b]
    assert len(kept) == 2
    ev.data = text.split("BEGIN:VEVENT", 1)[0] + "".join(kept) + "END:VCALENDAR\n"
    ev.save()
    user.sync(conn["id"])
    waiter(lambda: user.rem.get(f"/v1/reminders/{moved_rem['id']}").status_code == 404, message="override reminder deleted",
           diagnose=diagnose)
    assert _naive(user.rem.get(f"/v1/reminders/{yoga['id']}").json()["exdates"]) == {third}


def _utc(dt: datetime) -> str:
    return dt.strftime("%Y%m%dT%H%M%SZ")


def _gevent(summary: str, start: datetime, **extra) -> dict:
    body = {"summary": summary, "start": {"dateTime": start.isoformat().replace("+00:00", "Z"), "timeZone": "UTC"},
            "end": {"dateTime": (start + timedelta(minutes=30)).isoformat().replace("+00:00", "Z"), "timeZone": "UTC"},
            "reminders": {"useDefault": False, "overrides": [{"method": "popup", "minutes": 10}]}}
    body.update(extra)
    return body


def _exception(master: dict, original: datetime, **body) -> dict:
    """An instance exception as Google lists it: id <series>_<original start>, recurringEventId, originalStartTime."""
    return {"id": f"{master['id']}_{_utc(original)}", "recurringEventId": master["id"],
            "originalStartTime": {"dateTime": original.isoformat().replace("+00:00", "Z"), "timeZone": "UTC"}, **body}


def test_google_instance_exceptions_map_to_the_series_and_their_own_reminders(
        make_user, google_connect, gapi, calendar_worker, waiter, sync_state):
    user = make_user()
    conn = google_connect(user)
    cal = conn["username"]
    diagnose = lambda: sync_state.describe(conn["id"])
    first = (datetime.now(UTC) + timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)
    occ = [first + timedelta(days=7 * i) for i in range(6)]
    master = gapi.post(f"/_test/calendars/{cal}/events", json=_gevent("Standup", first, recurrence=["RRULE:FREQ=WEEKLY;COUNT=6"])).json()
    moved = occ[1] + timedelta(hours=3)
    gapi.post(f"/_test/calendars/{cal}/events", json=_exception(master, occ[1], **_gevent("Standup (moved)", moved)))
    gapi.post(f"/_test/calendars/{cal}/events", json=_exception(master, occ[2], status="cancelled"))
    user.sync(conn["id"])

    def mapped():
        rems = {r["title"]: r for r in user.reminders()}
        return rems if set(rems) == {"Standup", "Standup (moved)"} else None

    rems = waiter(mapped, message="series and exception imported", diagnose=diagnose)
    series, moved_rem = rems["Standup"], rems["Standup (moved)"]
    assert _naive(series["exdates"]) == {occ[1].replace(tzinfo=None), occ[2].replace(tzinfo=None)}
    assert datetime.fromisoformat(moved_rem["due_at"]) == moved and moved_rem["rrule"] is None

    # another occurrence is cancelled later: an incremental page with the exception only;
    # the series is read again and skips it too
    gapi.post(f"/_test/calendars/{cal}/events", json=_exception(master, occ[3], status="cancelled"))
    user.sync(conn["id"])
    waiter(lambda: _naive(user.rem.get(f"/v1/reminders/{series['id']}").json()["exdates"])
           == {o.replace(tzinfo=None) for o in occ[1:4]}, message="series skips the new exception", diagnose=diagnose)

    # Eindr edits the series: the patch never writes an EXDATE over the moved instance
    assert user.rem.patch(f"/v1/reminders/{series['id']}", json={"title": "Team standup"}).status_code == 200

    def patched():
        ev = next(e for e in gapi.get(f"/_test/calendars/{cal}/events").json() if e["id"] == master["id"])
        return ev if ev["summary"] == "Team standup" else None

    ev = waiter(patched, message="series written to Google", diagnose=diagnose)
    exdates = " ".join(line for line in ev["recurrence"] if line.startswith("EXDATE"))
    assert _utc(occ[2]) in exdates and _utc(occ[3]) in exdates and _utc(occ[1]) not in exdates

    # the moved instance is deleted in Google: its reminder goes; the series still skips it
    gapi.delete(f"/_test/calendars/{cal}/events/{master['id']}_{_utc(occ[1])}")
    user.sync(conn["id"])
    waiter(lambda: user.rem.get(f"/v1/reminders/{moved_rem['id']}").status_code == 404, message="exception's reminder deleted",
           diagnose=diagnose)
    assert occ[1].replace(tzinfo=None) in _naive(user.rem.get(f"/v1/reminders/{series['id']}").json()["exdates"])

    # an occurrence moved in Google, then its reminder cancelled in Eindr: the instance is
    # deleted in Google (that occurrence only), and the series keeps skipping it
    gapi.post(f"/_test/calendars/{cal}/events", json=_exception(master, occ[4], **_gevent("Standup (late)", occ[4] + timedelta(hours=5))))
    user.sync(conn["id"])
    late = waiter(lambda: [r for r in user.reminders() if r["title"] == "Standup (late)"], message="second exception imported",
                  diagnose=diagnose)[0]
    waiter(lambda: sync_state.idle(conn["id"]), message="worker idle", diagnose=diagnose)
    assert user.rem.post(f"/v1/reminders/{late['id']}/cancel", json={"scope": "series"}).status_code == 200

    def instance_status():
        evs = {e["id"]: e for e in gapi.get(f"/_test/calendars/{cal}/events").json()}
        return evs[f"{master['id']}_{_utc(occ[4])}"]["status"] == "cancelled" and evs[master["id"]]["status"] != "cancelled"

    waiter(instance_status, message="instance deleted in Google, series kept", diagnose=diagnose)
    waiter(lambda: sync_state.idle(conn["id"]), message="worker idle", diagnose=diagnose)
    user.sync(conn["id"])
    assert occ[4].replace(tzinfo=None) in _naive(user.rem.get(f"/v1/reminders/{series['id']}").json()["exdates"])
    assert user.rem.get(f"/v1/reminders/{series['id']}").json()["status"] == "scheduled"
