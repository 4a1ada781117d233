"""The scheduler worker as real processes: exact-once firing, SSE delivery, edits and
cancels, takeover after SIGKILL, quiet hours and timezone re-anchoring with the real users
service, bulk jobs."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from eindr_common.testing import auth_headers, new_uid

from .conftest import APP, headers_for, wait_for
from .sse import SseReader


def at(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


@pytest.fixture(scope="module")
def users_svc(start_service):
    return start_service("users-for-reminders", "eindr_users.app:create_app")


def deliveries(db, uid: str) -> list[tuple]:
    return db.execute(
        "SELECT reminder_id, occurrence_at, offset_s, seq, worker FROM reminders.deliveries WHERE uid = %s ORDER BY seq",
        (uid,),
    ).fetchall()


@pytest.fixture(scope="module")
def worker(start_worker_module, users_svc):
    # One worker configuration for the whole module (workers share the database): it asks
    # the real users service; users it does not know get the defaults (UTC, sse only).
    return start_worker_module({"EINDR_USERS_URL": users_svc.url})


def test_fires_once_and_arrives_on_the_sse_stream(api, reminders_api, worker, db):
    uid = new_uid()
    h = headers_for(uid)
    sse = SseReader(reminders_api.url + "/v1/notifications/stream", h, {"after": 0}).start()
    assert sse.status == 200 and sse.content_type.startswith("text/event-stream")
    rid = api.post("/v1/reminders", json={"title": "tea", "due_at": at(2)}, headers=h).json()["id"]
    wait_for(lambda: len(sse.events) >= 1, 30, message="SSE event")
    time.sleep(1.5)
    sse.close()
    assert len(sse.events) == 1
    event = sse.events[0]
    assert event["event"] == "reminder" and event["id"] == "1"
    assert event["data"]["reminder_id"] == rid and event["data"]["title"] == "tea"
    listed = api.get("/v1/notifications", headers=h).json()["items"]
    assert len(listed) == 1 and listed[0]["channels"] == {"sse": "published"}
    r = api.get(f"/v1/reminders/{rid}", headers=h).json()
    assert r["status"] == "fired" and r["fired_count"] == 1 and r["next_fire_at"] is None
    assert len(deliveries(db, uid)) == 1


def test_edited_cancelled_and_deleted_reminders_never_fire_their_old_occurrence(api, worker, db):
    uid = new_uid()
    h = headers_for(uid)
    mk = lambda title, s: api.post("/v1/reminders", json={"title": title, "due_at": at(s)}, headers=h).json()["id"]
    cancelled, moved, deleted, completed, control = mk("c", 3), mk("m", 3), mk("d", 3), mk("x", 3), mk("k", 3)
    time.sleep(0.8)  # let the worker claim them into its window first
    api.post(f"/v1/reminders/{cancelled}/cancel", headers=h)
    new_due = at(6)
    assert api.patch(f"/v1/reminders/{moved}", json={"due_at": new_due}, headers=h).status_code == 200
    api.delete(f"/v1/reminders/{deleted}", headers=h)
    api.post(f"/v1/reminders/{completed}/complete", headers=h)
    wait_for(lambda: len(deliveries(db, uid)) >= 2, 30, message="two deliveries")
    time.sleep(2)
    rows = deliveries(db, uid)
    assert sorted(str(r[0]) for r in rows) == sorted([moved, control])
    moved_row = next(r for r in rows if str(r[0]) == moved)
    assert moved_row[1] == datetime.fromisoformat(new_due).replace(microsecond=0)


def test_sse_resumes_after_last_event_id_and_snooze_refires(api, reminders_api, worker, db):
    uid = new_uid()
    h = headers_for(uid)
    ids = [
        api.post("/v1/reminders", json={"title": f"r{i}", "due_at": at(1.5)}, headers=h).json()["id"] for i in range(3)
    ]
    wait_for(lambda: len(deliveries(db, uid)) == 3, 30, message="three deliveries")
    sse = SseReader(reminders_api.url + "/v1/notifications/stream", {**h, "Last-Event-ID": "1"}).start()
    wait_for(lambda: len(sse.events) >= 2, 15, message="resumed events")
    assert [e["id"] for e in sse.events] == ["2", "3"]
    # Snoozing a fired reminder fires it once more, as a distinct delivery.
    r = api.post(f"/v1/reminders/{ids[0]}/snooze", json={"duration": "2s"}, headers=h)
    assert r.status_code == 200 and r.json()["status"] == "scheduled"
    wait_for(lambda: len(sse.events) >= 3, 30, message="snoozed event")
    sse.close()
    assert sse.events[2]["id"] == "4" and sse.events[2]["data"]["reminder_id"] == ids[0]
    assert sse.events[2]["data"]["offset"].startswith("+")
    assert api.get(f"/v1/reminders/{ids[0]}", headers=h).json()["fired_count"] == 2
    bad = httpx.get(reminders_api.url + "/v1/notifications/stream", headers={**h, "Last-Event-ID": "abc"})
    assert bad.status_code == 400


def test_bulk_job_reports_progress_and_per_item_failures(api, worker, db):
    uid = new_uid()
    h = headers_for(uid)
    items = [{"title": f"job {i}", "due_at": at(3600 + i)} for i in range(2500)]
    items[10]["title"] = ""
    items[1200]["rrule"] = "FREQ=WHENEVER"
    items[2499] = {"title": "no time"}
    r = api.post("/v1/reminders/jobs", json={"items": items}, headers=h)
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    assert r.json()["status"] in ("queued", "running", "succeeded")
    job = wait_for(
        lambda: (j := api.get(f"/v1/reminders/jobs/{job_id}", headers=h).json())["status"] == "succeeded" and j,
        120,
        message="job done",
    )
    assert job["total"] == 2500 and job["processed"] == 2500 and job["succeeded"] == 2497
    assert {(f["index"], f["field"]) for f in job["failures"]} == {(10, "title"), (1200, "rrule"), (2499, "due_at")}
    assert db.execute("SELECT count(*) FROM reminders.reminders WHERE uid = %s", (uid,)).fetchone()[0] == 2497
    assert api.get(f"/v1/reminders/jobs/{job_id}", headers=headers_for(new_uid())).status_code == 404


# ---------------------------------------------------------------- with the real users service


@pytest.fixture(scope="module")
def api_with_users(start_service, users_svc, friends_svc):
    svc = start_service(
        "reminders-with-users", APP, env={"EINDR_USERS_URL": users_svc.url, "EINDR_FRIENDS_URL": friends_svc.url}
    )
    with httpx.Client(base_url=svc.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def worker_with_users(worker):
    return worker


def provision(users_svc, prefs: dict) -> str:
    uid = new_uid()
    uh = auth_headers(uid, "users", claims={"email": f"{uid}@example.com", "name": "Reminder Tester"})
    r = httpx.post(users_svc.url + "/internal/users/provision", headers=uh)
    assert r.status_code in (200, 201), r.text
    r = httpx.patch(users_svc.url + "/v1/users/me/preferences", json=prefs, headers=uh)
    assert r.status_code == 200, r.text
    return uid


def test_quiet_hours_hold_a_delivery_until_they_end_unless_urgent(api_with_users, users_svc, worker_with_users, db):
    zone = "Asia/Kolkata"  # UTC+05:30, no DST
    now_local = datetime.now(UTC) + timedelta(hours=5, minutes=30)
    end_local = (now_local + timedelta(minutes=1)).replace(second=0, microsecond=0)
    if (end_local - now_local).total_seconds() < 20:
        end_local += timedelta(minutes=1)
    start_local = now_local - timedelta(hours=2)
    uid = provision(
        users_svc,
        {"timezone": zone, "quiet_hours": {"start": start_local.strftime("%H:%M"), "end": end_local.strftime("%H:%M")}},
    )
    h = headers_for(uid)
    normal = api_with_users.post("/v1/reminders", json={"title": "quiet", "due_at": at(2)}, headers=h).json()["id"]
    urgent = api_with_users.post(
        "/v1/reminders", json={"title": "loud", "due_at": at(2), "priority": "urgent"}, headers=h
    ).json()["id"]
    wait_for(lambda: len(deliveries(db, uid)) >= 1, 30, message="urgent delivery")
    held = wait_for(
        lambda: (r := api_with_users.get(f"/v1/reminders/{normal}", headers=h).json())["held_for_quiet_hours"] and r,
        30,
        message="held",
    )
    assert [str(d[0]) for d in deliveries(db, uid)] == [urgent]
    expected_end_utc = (end_local - timedelta(hours=5, minutes=30)).replace(tzinfo=UTC)
    assert datetime.fromisoformat(held["next_fire_at"]) == expected_end_utc
    wait_for(lambda: len(deliveries(db, uid)) == 2, 150, interval_s=0.5, message="held delivery after quiet hours")
    row = db.execute(
        "SELECT delivered_at, fire_at FROM reminders.deliveries WHERE reminder_id = %s", (uuid.UUID(normal),)
    ).fetchone()
    assert row[0] >= expected_end_utc and row[1] == expected_end_utc


def test_timezone_change_reanchors_floating_reminders_only(api_with_users, users_svc, worker_with_users, db):
    uid = provision(users_svc, {"timezone": "Europe/Amsterdam"})
    h = headers_for(uid)
    day = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    floating = api_with_users.post(
        "/v1/reminders", json={"title": "float", "local_due": f"{day}T09:00:00", "rrule": "FREQ=DAILY"}, headers=h
    ).json()
    zoned = api_with_users.post(
        "/v1/reminders",
        json={"title": "zoned", "local_due": f"{day}T09:00:00", "timezone": "Europe/Amsterdam"},
        headers=h,
    ).json()
    fixed = api_with_users.post(
        "/v1/reminders", json={"title": "fixed", "due_at": f"{day}T09:00:00+01:00"}, headers=h
    ).json()
    assert floating["tz_mode"] == "floating" and floating["timezone"] == "Europe/Amsterdam"
    r = httpx.patch(
        users_svc.url + "/v1/users/me/preferences",
        json={"timezone": "America/New_York"},
        headers=auth_headers(uid, "users"),
    )
    assert r.status_code == 200
    moved = wait_for(
        lambda: (
            (x := api_with_users.get(f"/v1/reminders/{floating['id']}", headers=h).json())["timezone"]
            == "America/New_York"
            and x
        ),
        60,
        interval_s=0.3,
        message="re-anchored",
    )
    from zoneinfo import ZoneInfo

    local = datetime.fromisoformat(moved["next_fire_at"]).astimezone(ZoneInfo("America/New_York"))
    assert local.strftime("%H:%M") == "09:00" and moved["local_due"] == f"{day}T09:00:00"
    assert api_with_users.get(f"/v1/reminders/{zoned['id']}", headers=h).json()["next_fire_at"] == zoned["next_fire_at"]
    assert api_with_users.get(f"/v1/reminders/{fixed['id']}", headers=h).json()["next_fire_at"] == fixed["next_fire_at"]


def test_account_deletion_erases_reminders_and_deliveries(api_with_users, users_svc, worker_with_users, db):
    uid = provision(users_svc, {"timezone": "UTC"})
    h = headers_for(uid)
    api_with_users.post("/v1/reminders", json={"title": "soon", "due_at": at(1)}, headers=h)
    api_with_users.post("/v1/reminders", json={"title": "later", "due_at": at(3600)}, headers=h)
    wait_for(lambda: len(deliveries(db, uid)) == 1, 30, message="delivery")
    assert httpx.delete(users_svc.url + "/v1/users/me", headers=auth_headers(uid, "users")).status_code == 204
    wait_for(
        lambda: db.execute("SELECT count(*) FROM reminders.reminders WHERE uid = %s", (uid,)).fetchone()[0] == 0,
        60,
        message="erased",
    )
    assert deliveries(db, uid) == []


def test_a_friends_reminder_follows_the_owners_zone_and_outlives_the_creators_account(
    api_with_users, users_svc, worker_with_users, friends, db
):
    owner = provision(users_svc, {"timezone": "America/New_York"})
    creator = provision(users_svc, {"timezone": "Asia/Tokyo"})
    friends.befriend(owner, creator)
    friends.set_tier(owner, creator, "trusted")
    day = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    r = api_with_users.post(
        "/v1/reminders",
        json={"title": "Call the plumber", "local_due": f"{day}T09:00:00", "for_user_id": owner},
        headers=headers_for(creator),
    )
    assert r.status_code == 201, r.text
    made = r.json()
    # A floating wall clock is the owner's (asked from the users service), not the creator's.
    assert (made["tz_mode"], made["timezone"], made["created_by"]) == ("floating", "America/New_York", creator)

    assert httpx.delete(users_svc.url + "/v1/users/me", headers=auth_headers(creator, "users")).status_code == 204
    wait_for(
        lambda: (
            db.execute("SELECT created_by FROM reminders.reminders WHERE id = %s", (made["id"],)).fetchone() == (None,)
        ),
        60,
        message="creator's id erased",
    )
    kept = api_with_users.get(f"/v1/reminders/{made['id']}", headers=headers_for(owner)).json()
    assert (kept["source"], kept["status"], kept["created_by"]) == ("friend", "scheduled", None)


def test_each_alarm_of_an_occurrence_fires_once_in_order(api, worker, db):
    uid = new_uid()
    h = headers_for(uid)
    rid = api.post("/v1/reminders", json={"title": "leave", "due_at": at(5), "alarms": ["-3s", 0]}, headers=h).json()[
        "id"
    ]
    wait_for(lambda: len(deliveries(db, uid)) >= 2, 30, message="both alarms")
    time.sleep(1.5)
    rows = deliveries(db, uid)
    assert [(str(r[0]), r[2], r[3]) for r in rows] == [(rid, -3, 1), (rid, 0, 2)]
    assert rows[0][1] == rows[1][1]  # one occurrence, two alarms
    r = api.get(f"/v1/reminders/{rid}", headers=h).json()
    assert r["status"] == "fired" and r["fired_count"] == 2
