"""calendar_query end to end: a real Radicale CalDAV calendar connected through the real
calendar service and synced into the real reminders service, read back by the assistant
as the user. Each test checks which events the answer is made of, not only its wording."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

TZ = "Europe/Amsterdam"


def local_at(day: date, hour: int, tz: str = TZ) -> datetime:
    return datetime(day.year, day.month, day.day, hour, 0, tzinfo=ZoneInfo(tz))


def today(tz: str = TZ) -> date:
    return datetime.now(ZoneInfo(tz)).date()


def test_tomorrow_reads_synced_events_and_reminders_of_that_day_only(make_user, connect_calendar, add_reminder, say):
    uid = make_user(timezone=TZ)
    tomorrow = today() + timedelta(days=1)
    conn = connect_calendar(uid, [("Dentist", local_at(tomorrow, 10)), ("Flight to Lisbon", local_at(tomorrow + timedelta(days=2), 8))])
    mum = add_reminder(uid, "Call mum", local_at(tomorrow, 17))
    add_reminder(uid, "Pay rent", local_at(tomorrow + timedelta(days=1), 9))

    body = say(uid, "what's on my calendar tomorrow").json()
    assert body["intent"]["name"] == "calendar_query", body
    [action] = body["actions"]
    assert action["type"] == "calendar.query" and action["status"] == "done"
    data = action["data"]
    assert [e["title"] for e in data["events"]] == ["Dentist", "Call mum"]
    assert [e["source"] for e in data["events"]] == ["calendar", "text"]
    assert data["count"] == 2 and data["from_calendar"] == 1 and mum in action["ids"]
    assert datetime.fromisoformat(data["events"][0]["at"]) == local_at(tomorrow, 10)
    assert data["calendars"] == [{"id": conn["id"], "provider": "caldav", "status": "active"}]
    reply = body["reply"]["text"]
    assert reply.startswith("You have 2 things on your calendar for tomorrow: Dentist at 10")
    assert "Call mum at 5" in reply and "Lisbon" not in reply and "Pay rent" not in reply
    assert "No calendar is connected" not in reply


def test_a_second_user_sees_only_their_own_calendar(make_user, connect_calendar, add_reminder, say):
    first, second = make_user(timezone=TZ), make_user(timezone=TZ)
    tomorrow = today() + timedelta(days=1)
    connect_calendar(first, [("Board meeting", local_at(tomorrow, 11))])
    add_reminder(first, "Call the bank", local_at(tomorrow, 15))
    gym = add_reminder(second, "Gym", local_at(tomorrow, 7))

    body = say(second, "what's on my calendar tomorrow").json()
    assert body["intent"]["name"] == "calendar_query", body
    data = body["actions"][0]["data"]
    assert [e["title"] for e in data["events"]] == ["Gym"] and body["actions"][0]["ids"] == [gym]
    assert data["calendars"] == []  # the first user's connection is not theirs
    reply = body["reply"]["text"]
    assert reply.startswith("You have one thing on your calendar for tomorrow: Gym at 7")
    assert reply.endswith("No calendar is connected yet, so this is from your Eindr reminders.")
    assert "Board meeting" not in reply and "bank" not in reply


def test_next_week_expands_recurring_reminders(make_user, connect_calendar, add_reminder, say):
    uid = make_user(timezone=TZ)
    start = today() + timedelta(days=1)
    next_monday = today() + timedelta(days=7 - today().weekday())
    # A daily stand-up whose next occurrence is before next week still happens every day of it.
    standup = add_reminder(uid, "Stand-up", local_at(start, 9), rrule="FREQ=DAILY")
    connect_calendar(uid, [("Dentist", local_at(next_monday + timedelta(days=2), 14))])

    body = say(uid, "what's on my calendar next week").json()
    assert body["intent"]["name"] == "calendar_query", body
    assert body["slots"]["day"] == "next_week"
    data = body["actions"][0]["data"]
    standups = [datetime.fromisoformat(e["at"]) for e in data["events"] if e["id"] == standup]
    assert standups == [local_at(next_monday + timedelta(days=i), 9) for i in range(7)]
    assert data["count"] == 8 and "Dentist" in [e["title"] for e in data["events"]]
    assert body["reply"]["text"].startswith("You have 8 things on your calendar next week: Stand-up ")
    assert "and 3 more" in body["reply"]["text"]


def test_a_calendar_that_stopped_syncing_is_said_first(make_user, connect_calendar, radicale, sync_calendar, say):
    uid = make_user(timezone=TZ)
    conn = connect_calendar(uid, [("Dentist", local_at(today() + timedelta(days=1), 10))])
    radicale.change_password(conn["account"], "changed-on-the-provider-site")
    r = sync_calendar(uid, conn["id"])
    assert r.status_code == 200 and r.json()["status"] == "failed", r.text

    body = say(uid, "what's on my calendar tomorrow").json()
    assert body["actions"][0]["data"]["calendars"][0]["status"] == "failed"
    reply = body["reply"]["text"]
    assert reply.startswith("Your Personal calendar isn't syncing right now, so this may be out of date. You have one thing")
    assert "Dentist" in reply  # what was synced before still answers


def test_calendar_by_voice(make_user, connect_calendar, speak, tts_voice):
    uid = make_user(timezone=TZ)
    connect_calendar(uid, [("Dentist", local_at(today() + timedelta(days=1), 10))])
    body = speak(uid, tts_voice("what's on my calendar tomorrow")).json()
    assert body["intent"]["name"] == "calendar_query", body
    assert [e["title"] for e in body["actions"][0]["data"]["events"]] == ["Dentist"], f"transcript={body['transcript']!r}"
    assert body["reply"]["text"].startswith("You have one thing on your calendar for tomorrow: Dentist")
    assert body["reply"]["audio_url"]


def test_calendar_in_german(make_user, connect_calendar, say):
    tz = "Europe/Berlin"
    uid = make_user(language="de-DE", timezone=tz)
    connect_calendar(uid, [("Zahnarzt", local_at(today(tz) + timedelta(days=1), 10, tz))])
    body = say(uid, "was steht morgen in meinem Kalender").json()
    assert body["intent"]["name"] == "calendar_query", body
    assert body["reply"]["language"] == "de"
    assert body["reply"]["text"] == "Du hast einen Termin im Kalender für morgen: Zahnarzt um 10:00."


def test_calendar_service_down_is_an_honest_cant(assistant_with, dead_url, make_user, client):
    from eindr_common.testing import auth_headers

    svc = assistant_with(EINDR_CALENDAR_URL=dead_url)
    uid = make_user()
    r = client.post(svc.url + "/v1/assistant/text", json={"text": "what's on my calendar tomorrow"}, headers=auth_headers(uid, "assistant"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["actions"][0]["status"] == "unavailable" and body["actions"][0]["service"] == "calendar"
    assert body["reply"]["text"] == "Sorry, I can't check your calendar right now. Please try again in a moment."
