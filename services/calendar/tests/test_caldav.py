"""CalDAV against a real Radicale server through the caldav library: discovery, connection
CRUD and authorization, encryption at rest, both sync directions, sync-token
invalidation, malformed items, wrong password, isolation of a failing connection."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta

import psycopg

from .conftest import future, ics


def test_connect_discovers_calendars_and_encrypts_the_password(make_user, caldav_connect, dav_user, db: psycopg.Connection, fernet):
    user = make_user()
    conn = caldav_connect(user, dav_user)
    assert conn["provider"] == "caldav" and conn["status"] == "active"
    assert [c["name"] for c in conn["calendars"]] == ["Personal"]
    assert conn["calendars"][0]["is_target"] and conn["calendars"][0]["sync_enabled"]
    assert "password" not in conn
    row = db.execute("SELECT secret_enc, username FROM calendar.connections WHERE id = %s", (conn["id"],)).fetchone()
    assert dav_user.password.encode() not in bytes(row[0])
    assert fernet.decrypt(bytes(row[0])).decode() == dav_user.password
    listed = user.cal.get("/v1/calendar/connections").json()
    assert [c["id"] for c in listed["items"]] == [conn["id"]]


def test_another_users_connection_is_404_on_every_route(make_user, caldav_connect, dav_user):
    owner, other = make_user(), make_user()
    conn = caldav_connect(owner, dav_user)
    cid, cal_id = conn["id"], conn["calendars"][0]["id"]
    for method, path, body in [
        ("GET", f"/v1/calendar/connections/{cid}", None),
        ("PATCH", f"/v1/calendar/connections/{cid}", {"import_mode": "all"}),
        ("PATCH", f"/v1/calendar/connections/{cid}/calendars/{cal_id}", {"sync_enabled": False}),
        ("POST", f"/v1/calendar/connections/{cid}/sync", None),
        ("GET", f"/v1/calendar/connections/{cid}/runs", None),
        ("GET", f"/v1/calendar/conflicts?connection_id={cid}", None),
        ("DELETE", f"/v1/calendar/connections/{cid}", None),
    ]:
        r = other.cal.request(method, path, json=body)
        assert r.status_code == 404, (method, path, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    assert other.cal.get("/v1/calendar/connections").json()["items"] == []
    assert owner.cal.get(f"/v1/calendar/connections/{cid}").status_code == 200  # untouched


def test_bad_input_is_400_naming_the_field(make_user, radicale, dav_user, reminders_svc):
    user = make_user()
    cases = [
        ({"server_url": "not a url", "username": "a", "password": "b"}, "server_url"),
        ({"server_url": radicale.url, "username": "", "password": "b"}, "username"),
        ({"server_url": radicale.url, "username": "a\x00", "password": "b"}, "username"),
        ({"server_url": radicale.url, "username": "a", "password": "b", "poll_interval_s": 5}, "poll_interval_s"),
        ({"server_url": radicale.url, "username": "a", "password": "b", "import_mode": "some"}, "import_mode"),
        ({"server_url": radicale.url, "username": "a", "password": "b", "surprise": 1}, "surprise"),
        # a real HTTP server that is not a CalDAV server
        ({"server_url": reminders_svc.url + "/healthz", "username": "a", "password": "b"}, "server_url"),
        # wrong password: rejected by the server at connect time, nothing stored
        ({"server_url": radicale.url, "username": dav_user.username, "password": "wrong"}, "password"),
    ]
    for body, field in cases:
        r = user.cal.post("/v1/calendar/connections/caldav", json=body)
        assert r.status_code == 400, (body, r.text)
        assert field in [e["field"] for e in r.json()["errors"]], (body, r.json())
    assert user.cal.get("/v1/calendar/connections").json()["items"] == []
    r = user.cal.get("/v1/calendar/connections/not-a-uuid")
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "connection_id"
    r = user.cal.get("/v1/calendar/connections", params={"cursor": "!!!"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "cursor"


def test_events_become_reminders_and_edits_and_deletions_flow_back(make_user, caldav_connect, dav_user):
    user = make_user()
    conn = caldav_connect(user, dav_user)
    start = future()
    dav_user.add(ics("with-alarm-1", "Dentist", start, alarm="-PT30M"))
    dav_user.add(ics("no-alarm-1", "Lunch", start))  # placeholder replaced below
    dav_user.by_uid("no-alarm-1").delete()
    dav_user.add(ics("no-alarm-2", "Lunch", start, alarm=None))
    dav_user.add(ics("weekly-1", "Gym", start, alarm="PT0S", rrule="FREQ=WEEKLY;BYDAY=MO,WE"))
    dav_user.add(ics("past-1", "Old", start - timedelta(days=10)))
    run = user.sync(conn["id"])
    assert run["status"] == "succeeded", run
    rems = {r["title"]: r for r in user.reminders()}
    assert set(rems) == {"Dentist", "Gym"}  # no alarm: not imported (import_mode=alarms); past one-off skipped
    assert rems["Dentist"]["source"] == "calendar"
    assert rems["Dentist"]["alarms"] == ["-30m"]
    assert datetime.fromisoformat(rems["Dentist"]["due_at"]) == start
    assert rems["Gym"]["rrule"] in ("FREQ=WEEKLY;BYDAY=MO,WE", "RRULE:FREQ=WEEKLY;BYDAY=MO,WE")

    # edit in the calendar -> the reminder follows
    ev = dav_user.by_uid("with-alarm-1")
    ev.data = ics("with-alarm-1", "Dentist (moved)", start + timedelta(hours=2), alarm="-PT1H")
    ev.save()
    user.sync(conn["id"])
    dentist = user.rem.get(f"/v1/reminders/{rems['Dentist']['id']}").json()
    assert dentist["title"] == "Dentist (moved)"
    assert datetime.fromisoformat(dentist["due_at"]) == start + timedelta(hours=2)
    assert dentist["alarms"] == ["-1h"]

    # nothing changed: the next run changes nothing and makes no new reminders
    again = user.sync(conn["id"])
    assert again["changes_in"] == 0 and again["changes_out"] == 0
    assert len(user.reminders()) == 2

    # deletion in the calendar -> the imported reminder is deleted
    dav_user.by_uid("with-alarm-1").delete()
    user.sync(conn["id"])
    assert user.rem.get(f"/v1/reminders/{rems['Dentist']['id']}").status_code == 404
    runs = user.cal.get(f"/v1/calendar/connections/{conn['id']}/runs").json()["items"]
    assert len(runs) >= 4 and all(r["requests"] >= 1 for r in runs)


def test_import_mode_all_imports_events_without_alarm(make_user, caldav_connect, dav_user):
    user = make_user()
    conn = caldav_connect(user, dav_user, import_mode="all")
    dav_user.add(ics("plain-1", "Standup", future(), alarm=None))
    user.sync(conn["id"])
    assert [r["title"] for r in user.reminders()] == ["Standup"]


def test_reminders_are_written_to_the_calendar_without_echo(make_user, caldav_connect, dav_user, calendar_worker, waiter):
    # driven by the reminders service's own events (reminder.created/updated/cancelled on its stream)
    user = make_user()
    conn = caldav_connect(user, dav_user)
    r = user.rem.post("/v1/reminders", json={"title": "Water plants", "local_due": (future(72)).replace(tzinfo=None).isoformat(),
                                             "timezone": "Europe/Amsterdam", "rrule": "FREQ=WEEKLY;BYDAY=SA", "alarms": [0, "-10m"]})
    assert r.status_code == 201, r.text
    reminder = r.json()
    ev = waiter(lambda: next((e for e in dav_user.events() if "Water plants" in e.data), None), message="event in radicale")
    data = ev.data
    assert f"X-EINDR-REMINDER-ID:{reminder['id']}" in data
    assert "RRULE:FREQ=WEEKLY;BYDAY=SA" in data and "TZID=Europe/Amsterdam" in data
    assert "TRIGGER:-PT10M" in data

    # the pull of that same event never creates a second reminder (no echo)
    user.sync(conn["id"])
    assert [x["id"] for x in user.reminders()] == [reminder["id"]]

    # edit in Eindr -> the event follows; the run that follows imports nothing
    r = user.rem.patch(f"/v1/reminders/{reminder['id']}", json={"title": "Water the plants"})
    assert r.status_code == 200, r.text
    waiter(lambda: any("Water the plants" in e.data for e in dav_user.events()), message="edited event")
    user.sync(conn["id"])
    assert len(user.reminders()) == 1 and len(dav_user.events()) == 1

    # cancel in Eindr -> the event is deleted
    r = user.rem.post(f"/v1/reminders/{reminder['id']}/cancel", json={"scope": "series"})
    assert r.status_code == 200, r.text
    waiter(lambda: dav_user.events() == [], message="event deleted")


def test_invalid_sync_token_re_enumerates(make_user, caldav_connect, dav_user, db):
    user = make_user()
    conn = caldav_connect(user, dav_user)
    start = future()
    dav_user.add(ics("keep-1", "Keep", start))
    dav_user.add(ics("gone-1", "Gone", start))
    user.sync(conn["id"])
    assert {r["title"] for r in user.reminders()} == {"Keep", "Gone"}
    # the server forgets our token (e.g. its history was pruned), and meanwhile one event
    # is deleted and one added
    db.execute("UPDATE calendar.calendars SET sync_token = 'http://radicale.org/ns/sync/forgotten', ctag = NULL WHERE connection_id = %s",
               (conn["id"],))
    dav_user.by_uid("gone-1").delete()
    dav_user.add(ics("new-1", "New", start))
    run = user.sync(conn["id"])
    assert run["full_resync"] is True and run["status"] == "succeeded", run
    titles = sorted(r["title"] for r in user.reminders() if r["status"] != "cancelled")
    assert titles == ["Keep", "New"]


def test_malformed_item_is_skipped_and_the_run_continues(make_user, caldav_connect, dav_user, radicale):
    user = make_user()
    conn = caldav_connect(user, dav_user)
    # Radicale validates what it is sent, so the bad item is put in its storage directly,
    # as a broken client could have left it.
    good = ics("good-1", "Good", future())
    dav_user.add(good)
    col = str(dav_user.calendar.url).rstrip("/").rsplit("/", 1)[-1]
    folder = radicale.root / "collections" / "collection-root" / dav_user.username / col
    (folder / "broken.ics").write_text("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:broken-1\r\nSUMMARY:no start\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    # valid iCalendar that the reminders API refuses (SECONDLY): the bulk import falls back
    # to one by one, and only this item is skipped
    dav_user.add(ics("secondly-1", "Too often", future(), rrule="FREQ=SECONDLY;COUNT=5"))
    dav_user.add(ics("good-2", "Good too", future()))
    user.sync(conn["id"])
    assert sorted(r["title"] for r in user.reminders()) == ["Good", "Good too"]
    # this run or the worker's (the connection was due) recorded the skipped item
    runs = user.cal.get(f"/v1/calendar/connections/{conn['id']}/runs").json()["items"]
    assert any(r["status"] == "partial" and any(e["where"] == "event" and e.get("uid") == "secondly-1" and "rrule" in e["message"].lower()
                                                for e in r["errors"]) for r in runs), runs


def test_wrong_password_marks_the_connection_failed_until_fixed(make_user, caldav_connect, dav_user, db, fernet):
    user = make_user()
    conn = caldav_connect(user, dav_user)
    # the user changes their app-specific password on the server: ours is now wrong
    bad = fernet.encrypt(b"old-password")
    db.execute("UPDATE calendar.connections SET secret_enc = %s WHERE id = %s", (bad, conn["id"]))
    r = user.cal.post(f"/v1/calendar/connections/{conn['id']}/sync")
    if r.status_code == 200:
        assert r.json()["status"] == "failed" and "password" in r.json()["errors"][0]["message"]
    else:  # the worker's run got there first and already marked it failed
        assert r.status_code == 409 and r.json()["code"] == "connection_failed"
    got = user.cal.get(f"/v1/calendar/connections/{conn['id']}").json()
    assert got["status"] == "failed" and "password" in got["last_error"]
    r = user.cal.post(f"/v1/calendar/connections/{conn['id']}/sync")
    assert r.status_code == 409 and r.json()["code"] == "connection_failed"
    r = user.cal.patch(f"/v1/calendar/connections/{conn['id']}", json={"password": "still-wrong"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "password"
    r = user.cal.patch(f"/v1/calendar/connections/{conn['id']}", json={"password": dav_user.password})
    assert r.status_code == 200 and r.json()["status"] == "active"
    assert user.sync(conn["id"])["status"] == "succeeded"


def test_a_failing_connection_does_not_block_the_others(make_user, caldav_connect, radicale, calendar_worker, db, waiter):
    import caldav

    user = make_user()
    good_user, good_pw = radicale.new_account()
    client = caldav.DAVClient(url=radicale.url, username=good_user, password=good_pw)
    cal = client.principal().make_calendar(name="Good")
    bad_user, bad_pw = radicale.new_account()
    caldav.DAVClient(url=radicale.url, username=bad_user, password=bad_pw).principal().make_calendar(name="Bad")
    good = user.cal.post("/v1/calendar/connections/caldav", json={"server_url": radicale.url, "username": good_user, "password": good_pw}).json()
    bad = user.cal.post("/v1/calendar/connections/caldav", json={"server_url": radicale.url, "username": bad_user, "password": bad_pw}).json()
    # the bad one's server goes away (a closed port)
    from eindr_common.localstack import free_port

    db.execute("UPDATE calendar.connections SET server_url = %s WHERE id = %s", (f"http://127.0.0.1:{free_port()}/", bad["id"]))
    db.execute("UPDATE calendar.calendars SET remote_id = replace(remote_id, %s, %s) WHERE connection_id = %s",
               (radicale.url.rstrip("/"), "http://127.0.0.1:9", bad["id"]))
    cal.add_event(ics("iso-1", "Isolated", future()))
    db.execute("UPDATE calendar.connections SET next_sync_at = now() WHERE id IN (%s, %s)", (good["id"], bad["id"]))
    waiter(lambda: any(r["title"] == "Isolated" for r in user.reminders()), message="good connection synced by the worker")
    def failed_once():
        row = db.execute("SELECT failures, next_sync_at - updated_at BETWEEN interval '5 seconds' AND interval '1 hour', status, last_error "
                         "FROM calendar.connections WHERE id = %s", (bad["id"],)).fetchone()
        return row if row and row[0] >= 1 else None

    bad_row = waiter(failed_once, message="bad connection failed")
    assert bad_row[1] is True  # backed off (exponentially from EINDR_CALENDAR_BACKOFF_BASE_S), not the 15-minute poll
    assert bad_row[2] == "active" and bad_row[3]  # a transient error: retried later, not disabled
    runs = user.cal.get(f"/v1/calendar/connections/{bad['id']}/runs").json()["items"]
    assert runs and runs[0]["status"] == "failed"


def test_disconnect_deletes_credentials_and_state(make_user, caldav_connect, dav_user, db):
    user = make_user()
    conn = caldav_connect(user, dav_user)
    dav_user.add(ics("d-1", "Keep me", future()))
    user.sync(conn["id"])
    r = user.cal.delete(f"/v1/calendar/connections/{conn['id']}")
    assert r.status_code == 204
    for table in ("connections", "calendars", "links", "runs", "outbound"):
        col = "id" if table == "connections" else "connection_id"
        assert db.execute(f"SELECT count(*) FROM calendar.{table} WHERE {col} = %s", (conn["id"],)).fetchone()[0] == 0, table
    assert user.cal.get(f"/v1/calendar/connections/{conn['id']}").status_code == 404
    assert [r["title"] for r in user.reminders()] == ["Keep me"]  # reminders already made stay
    assert uuid.UUID(conn["id"])


def test_bulk_created_and_cancelled_by_filter_reach_the_calendar(make_user, caldav_connect, dav_user, calendar_worker, waiter):
    user = make_user()
    caldav_connect(user, dav_user)
    due = future(30).isoformat()
    r = user.rem.post("/v1/reminders:bulk", json={"items": [{"title": "Bulk one", "due_at": due}, {"title": "Bulk two", "due_at": due}]})
    assert r.status_code == 201, r.text
    ids = [x["id"] for x in r.json()["items"]]
    waiter(lambda: sorted(re.search(r"^SUMMARY:(.*?)\r?$", e.data, re.MULTILINE).group(1) for e in dav_user.events()) == ["Bulk one", "Bulk two"],
           message="bulk reminders written")
    r = user.rem.post("/v1/reminders:cancel", json={"ids": ids})
    assert r.status_code == 200 and r.json()["cancelled"] == 2, r.text
    waiter(lambda: dav_user.events() == [], message="events of the cancelled reminders deleted")
