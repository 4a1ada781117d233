"""Google: OAuth 2.0 + PKCE, Calendar v3 incremental sync with syncToken and 410 Gone,
push channels (watch, webhook verification, renewal, stop), revoked grants — all through
google-api-python-client / google-auth / httpx against a local server that speaks the
documented wire format."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlparse

import httpx

from .conftest import future


def _event(summary: str, start: datetime, *, minutes: list[int] | None = None, **extra) -> dict:
    body = {"summary": summary, "start": {"dateTime": start.isoformat().replace("+00:00", "Z")},
            "end": {"dateTime": (start + timedelta(minutes=30)).isoformat().replace("+00:00", "Z")}}
    if minutes is not None:
        body["reminders"] = {"useDefault": False, "overrides": [{"method": "popup", "minutes": m} for m in minutes]}
    else:
        body["reminders"] = {"useDefault": False}
    body.update(extra)
    return body


def test_pkce_consent_url_and_encrypted_refresh_token(make_user, google_connect, gapi, db, fernet):
    user = make_user()
    r = user.cal.post("/v1/calendar/google/connect")
    url = urlparse(r.json()["authorization_url"])
    q = parse_qs(url.query)
    assert q["code_challenge_method"] == ["S256"] and len(q["code_challenge"][0]) == 43
    assert q["response_type"] == ["code"] and q["access_type"] == ["offline"]
    assert q["scope"] == ["https://www.googleapis.com/auth/calendar"]
    conn = google_connect(user)
    PRIMARY = conn["username"]
    assert conn["provider"] == "google" and conn["status"] == "active" and PRIMARY.endswith("@example.com")
    cals = {c["remote_id"]: c for c in conn["calendars"]}
    assert set(cals) == {PRIMARY, "work." + PRIMARY} and cals[PRIMARY]["is_target"]  # read-only calendars are left out
    row = db.execute("SELECT secret_enc, access_token_enc FROM calendar.connections WHERE id = %s", (conn["id"],)).fetchone()
    refresh = fernet.decrypt(bytes(row[0])).decode()
    assert refresh in gapi.get("/_test/state").json()["refresh_tokens"]
    assert refresh.encode() not in bytes(row[0]) and b"ya29." not in bytes(row[1])


def test_callback_rejects_foreign_or_replayed_state_and_bad_codes(make_user, google_connect, gapi):
    alice, mallory = make_user(), make_user()
    started = alice.cal.post("/v1/calendar/google/connect").json()
    loc = gapi.get(started["authorization_url"].replace(str(gapi.base_url).rstrip("/"), ""), follow_redirects=False).headers["location"]
    code = parse_qs(urlparse(loc).query)["code"][0]
    r = mallory.cal.post("/v1/calendar/google/callback", json={"code": code, "state": started["state"]})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "state"
    # the state is single-use: mallory's attempt consumed it
    r = alice.cal.post("/v1/calendar/google/callback", json={"code": code, "state": started["state"]})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "state"
    started = alice.cal.post("/v1/calendar/google/connect").json()
    r = alice.cal.post("/v1/calendar/google/callback", json={"code": "4/made-up", "state": started["state"]})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "code"
    r = alice.cal.post("/v1/calendar/google/callback", json={"code": "", "state": "x"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "code"
    assert alice.cal.get("/v1/calendar/connections").json()["items"] == []


def test_incremental_sync_with_sync_token_both_directions_of_change(make_user, google_connect, gapi):
    user = make_user()
    conn = google_connect(user)
    PRIMARY = conn["username"]
    start = future()
    created = gapi.post(f"/_test/calendars/{PRIMARY}/events", json=_event("Flight", start, minutes=[60, 1440])).json()
    gapi.post(f"/_test/calendars/{PRIMARY}/events", json=_event("No alarm", start))
    run = user.sync(conn["id"])
    assert run["status"] == "succeeded", run
    rems = user.reminders()
    assert [r["title"] for r in rems] == ["Flight"]
    flight = rems[0]
    assert flight["source"] == "calendar" and sorted(flight["alarms"]) == ["-1d", "-1h"]
    assert datetime.fromisoformat(flight["due_at"]) == start

    gapi.patch(f"/_test/calendars/{PRIMARY}/events/{created['id']}", json={"summary": "Flight KL1234"})
    user.sync(conn["id"])
    lists = [e for e in gapi.get("/_test/state").json()["log"] if e["method"] == "GET" and e["path"] == f"/calendar/v3/calendars/{PRIMARY}/events"]
    assert "syncToken" not in lists[0]["query"] and all("syncToken" in e["query"] for e in lists[1:]) and len(lists) >= 2
    assert user.rem.get(f"/v1/reminders/{flight['id']}").json()["title"] == "Flight KL1234"

    gapi.delete(f"/_test/calendars/{PRIMARY}/events/{created['id']}")
    user.sync(conn["id"])
    assert user.rem.get(f"/v1/reminders/{flight['id']}").status_code == 404


def test_410_gone_means_full_resync(make_user, google_connect, gapi):
    user = make_user()
    conn = google_connect(user)
    PRIMARY = conn["username"]
    start = future()
    a = gapi.post(f"/_test/calendars/{PRIMARY}/events", json=_event("A", start, minutes=[5])).json()
    gapi.post(f"/_test/calendars/{PRIMARY}/events", json=_event("B", start, minutes=[5])).json()
    user.sync(conn["id"])
    assert sorted(r["title"] for r in user.reminders()) == ["A", "B"]
    gapi.post(f"/_test/calendars/{PRIMARY}/invalidate-sync-tokens")
    # while the token is dead: A is deleted for good (the full list no longer has it) and C is added
    gapi.delete(f"/_test/calendars/{PRIMARY}/events/{a['id']}")
    gapi.post(f"/_test/calendars/{PRIMARY}/invalidate-sync-tokens")
    gapi.post(f"/_test/calendars/{PRIMARY}/events", json=_event("C", start, minutes=[5]))
    run = user.sync(conn["id"])
    assert run["status"] == "succeeded", run
    # this run or the worker's (woken by the push notifications of those changes) did it
    runs = user.cal.get(f"/v1/calendar/connections/{conn['id']}/runs").json()["items"]
    assert any(r["full_resync"] and r["status"] == "succeeded" for r in runs), runs
    assert sorted(r["title"] for r in user.reminders()) == ["B", "C"]
    assert any(e.get("query", {}).get("syncToken") for e in gapi.get("/_test/state").json()["log"])


def test_reminder_becomes_google_event_without_echo(make_user, google_connect, gapi, calendar_worker, waiter):
    user = make_user()
    conn = google_connect(user)
    PRIMARY = conn["username"]
    r = user.rem.post("/v1/reminders", json={"title": "Pay rent", "due_at": future(100).isoformat(), "alarms": ["-1d"]})
    assert r.status_code == 201, r.text
    reminder = r.json()

    def written():
        evs = gapi.get(f"/_test/calendars/{PRIMARY}/events").json()
        return next((e for e in evs if e.get("extendedProperties", {}).get("private", {}).get("eindrReminderId") == reminder["id"]), None)

    ev = waiter(written, message="event written to Google")
    assert ev["summary"] == "Pay rent" and ev["reminders"]["overrides"] == [{"method": "popup", "minutes": 1440}]
    user.sync(conn["id"])
    assert [x["id"] for x in user.reminders()] == [reminder["id"]]  # the event was not imported back
    assert len([e for e in gapi.get(f"/_test/calendars/{PRIMARY}/events").json() if e["status"] != "cancelled"]) == 1


def _channel_for(gapi, calendar_id: str, address_part: str = "/v1/calendar/webhooks/google") -> list[dict]:
    return [c for c in gapi.get("/_test/state").json()["channels"] if c["calendar"] == calendar_id and address_part in c["address"]]


def test_webhook_verifies_channel_and_token_and_queues_a_sync(make_user, google_connect, gapi, calendar_svc, db):
    user = make_user()
    conn = google_connect(user)
    PRIMARY = conn["username"]
    user.sync(conn["id"])  # creates the push channels
    row = db.execute("SELECT channel_id FROM calendar.calendars WHERE connection_id = %s AND remote_id = %s", (conn["id"], PRIMARY)).fetchone()
    channel = next(c for c in gapi.get("/_test/state").json()["channels"] if c["id"] == row[0])
    assert channel["token"] and len(channel["token"]) >= 32
    url = calendar_svc.url + "/v1/calendar/webhooks/google"

    def headers(**over):
        h = {"X-Goog-Channel-ID": channel["id"], "X-Goog-Channel-Token": channel["token"], "X-Goog-Resource-ID": channel["resourceId"],
             "X-Goog-Resource-URI": channel["resourceUri"], "X-Goog-Resource-State": "exists", "X-Goog-Message-Number": "7",
             "X-Goog-Channel-Expiration": "Tue, 01 Dec 2026 10:00:00 GMT"}
        h.update(over)
        return h

    def requested():
        return db.execute("SELECT requested_at FROM calendar.connections WHERE id = %s", (conn["id"],)).fetchone()[0]

    before = requested()
    r = httpx.post(url, headers=headers(**{"X-Goog-Channel-Token": "wrong"}))
    assert r.status_code == 403 and r.json()["code"] == "invalid_channel_token"
    r = httpx.post(url, headers=headers(**{"X-Goog-Channel-ID": "unknown-channel"}))
    assert r.status_code == 404
    r = httpx.post(url, headers={})
    assert r.status_code == 404
    r = httpx.post(url, headers=headers(**{"X-Goog-Resource-ID": "another-resource"}))
    assert r.status_code == 403
    r = httpx.post(url, headers=headers(**{"X-Goog-Resource-State": "sync"}))
    assert r.status_code == 204
    assert requested() == before  # nothing was queued by any of these
    r = httpx.post(url, headers=headers())
    assert r.status_code == 204 and r.content == b""
    after = requested()
    assert after is not None and (before is None or after > before)
    due = db.execute("SELECT next_sync_at <= now() FROM calendar.connections WHERE id = %s", (conn["id"],)).fetchone()[0]
    assert due is True


def test_push_notification_drives_a_sync_end_to_end(make_user, google_connect, gapi, calendar_worker, waiter):
    user = make_user()
    conn = google_connect(user)  # poll interval 15 min: only a push brings the next change in
    PRIMARY = conn["username"]
    waiter(lambda: user.cal.get(f"/v1/calendar/connections/{conn['id']}/runs").json()["items"], message="first run")
    waiter(lambda: _channel_for(gapi, PRIMARY) and user.cal.get(f"/v1/calendar/connections/{conn['id']}").json()["calendars"][0]["push_channel_expires_at"],
           message="channel")
    gapi.post(f"/_test/calendars/{PRIMARY}/events", json=_event("Pushed", future(), minutes=[10]))
    waiter(lambda: [r for r in user.reminders() if r["title"] == "Pushed"], message="reminder from a push notification")
    notes = gapi.get("/_test/state").json()["notifications"]
    assert any(n.get("state") == "exists" and n.get("status") == 204 for n in notes)


def test_channels_are_renewed_before_they_expire_and_stopped_on_disconnect(make_user, google_connect, gapi, db):
    user = make_user()
    conn = google_connect(user)
    PRIMARY = conn["username"]
    user.sync(conn["id"])
    old = db.execute("SELECT id, channel_id FROM calendar.calendars WHERE connection_id = %s AND remote_id = %s", (conn["id"], PRIMARY)).fetchone()
    db.execute("UPDATE calendar.calendars SET channel_expires_at = now() + interval '1 hour' WHERE id = %s", (old[0],))
    user.sync(conn["id"])
    new = db.execute("SELECT channel_id, channel_expires_at > now() + interval '6 days' FROM calendar.calendars WHERE id = %s", (old[0],)).fetchone()
    assert new[0] != old[1] and new[1] is True
    state = gapi.get("/_test/state").json()
    assert old[1] in [c["id"] for c in state["stopped"]] and new[0] in [c["id"] for c in state["channels"]]
    live = [c[0] for c in db.execute("SELECT channel_id FROM calendar.calendars WHERE connection_id = %s", (conn["id"],)).fetchall()]
    r = user.cal.delete(f"/v1/calendar/connections/{conn['id']}")
    assert r.status_code == 204
    stopped = [c["id"] for c in gapi.get("/_test/state").json()["stopped"]]
    assert all(ch in stopped for ch in live)
    assert db.execute("SELECT count(*) FROM calendar.connections WHERE id = %s", (conn["id"],)).fetchone()[0] == 0


def test_revoked_grant_marks_needs_reauth(make_user, google_connect, gapi, db):
    user = make_user()
    conn = google_connect(user)
    PRIMARY = conn["username"]
    assert user.sync(conn["id"])["status"] == "succeeded"
    gapi.post(f"/_test/accounts/{PRIMARY.split('@')[0]}/revoke")
    run = user.sync(conn["id"])
    assert run["status"] == "failed", run
    got = user.cal.get(f"/v1/calendar/connections/{conn['id']}").json()
    assert got["status"] == "needs_reauth" and "connect Google again" in got["last_error"]
    r = user.cal.post(f"/v1/calendar/connections/{conn['id']}/sync")
    assert r.status_code == 409 and r.json()["code"] == "connection_needs_reauth"


def test_access_token_is_refreshed_before_it_expires(make_user, google_connect, db, fernet):
    user = make_user()
    conn = google_connect(user)
    db.execute("UPDATE calendar.connections SET access_expires_at = now() + interval '1 minute' WHERE id = %s", (conn["id"],))
    before = fernet.decrypt(bytes(db.execute("SELECT access_token_enc FROM calendar.connections WHERE id = %s", (conn["id"],)).fetchone()[0]))
    assert user.sync(conn["id"])["status"] == "succeeded"
    row = db.execute("SELECT access_token_enc, access_expires_at > now() + interval '50 minutes' FROM calendar.connections WHERE id = %s",
                     (conn["id"],)).fetchone()
    assert fernet.decrypt(bytes(row[0])) != before and row[1] is True


def test_user_deleted_stops_channels_and_erases_connections(make_user, google_connect, gapi, rds, db, calendar_worker, waiter):
    import json
    import time as _time

    from eindr_common.events import stream_name

    user = make_user()
    conn = google_connect(user)
    user.sync(conn["id"])
    live = [c[0] for c in db.execute("SELECT channel_id FROM calendar.calendars WHERE connection_id = %s AND channel_id IS NOT NULL",
                                     (conn["id"],)).fetchall()]
    assert live
    rds.xadd(stream_name("users"), {"id": uuid.uuid4().hex, "type": "user.deleted", "at": _time.time(), "payload": json.dumps({"uid": user.uid})})
    waiter(lambda: db.execute("SELECT count(*) FROM calendar.connections WHERE user_id = %s", (user.uid,)).fetchone()[0] == 0,
           message="connections erased")
    stopped = [c["id"] for c in gapi.get("/_test/state").json()["stopped"]]
    assert all(ch in stopped for ch in live)
