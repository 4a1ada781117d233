"""Pure rules: mapping both ways, fingerprints, conflict rule, backoff."""

from datetime import UTC, datetime, timedelta

from eindr_calendar import domain, google, ical

REMINDER = {
    "id": "11111111-1111-1111-1111-111111111111", "title": "Call mum", "notes": "about Sunday",
    "local_due": "2030-12-01T17:00:00", "timezone": "Europe/Amsterdam", "tz_mode": "zoned",
    "rrule": "FREQ=WEEKLY;BYDAY=MO", "exdates": ["2030-12-08T17:00:00"], "alarms": ["-10m", "0"],
    "status": "scheduled", "updated_at": "2030-11-26T06:00:00+00:00", "due_at": "2030-12-01T16:00:00+00:00",
}


def test_reminder_to_ical_and_back_keeps_the_fingerprint():
    ev = domain.reminder_to_event(REMINDER)
    text = ical.build_calendar(ev)
    assert "RRULE:FREQ=WEEKLY;BYDAY=MO" in text
    assert "DTSTART;TZID=Europe/Amsterdam:20301201T170000" in text
    assert "TRIGGER:-PT10M" in text and "X-EINDR-REMINDER-ID:11111111-1111-1111-1111-111111111111" in text
    back = ical.parse_calendar(text)[0]
    assert back.fingerprint() == ev.fingerprint()
    assert back.reminder_id == REMINDER["id"]
    assert not domain.should_import(back, "all")  # an event Eindr wrote is never imported


def test_reminder_to_google_and_back_keeps_the_fingerprint():
    ev = domain.reminder_to_event(REMINDER)
    body = google.event_body(ev)
    assert body["start"] == {"dateTime": "2030-12-01T17:00:00", "timeZone": "Europe/Amsterdam"}
    assert body["reminders"] == {"useDefault": False, "overrides": [{"method": "popup", "minutes": 10}, {"method": "popup", "minutes": 0}]}
    assert body["extendedProperties"]["private"]["eindrReminderId"] == REMINDER["id"]
    item = dict(body, id="abc", updated="2030-11-26T06:00:00.000Z", status="confirmed")
    item["start"] = {"dateTime": "2030-12-01T17:00:00+01:00", "timeZone": "Europe/Amsterdam"}
    back = google.parse_event(item)
    assert back.fingerprint() == ev.fingerprint()


def test_event_to_reminder_bodies():
    ev = domain.EventData(uid="u1", summary=" Dentist ", start=datetime(2030, 1, 2, 9, 30, tzinfo=UTC),
                          alarms=[-3600, -90], has_alarm=True)
    body = domain.create_body(ev)
    assert body == {"title": "Dentist", "due_at": "2030-01-02T09:30:00+00:00", "alarms": [-60, "-90s"], "source": "calendar"}
    patch = domain.patch_body(ev)
    assert patch["rrule"] is None and patch["notes"] is None and "local_due" not in patch


def test_import_rule():
    with_alarm = domain.EventData(uid="a", has_alarm=True)
    without = domain.EventData(uid="b")
    assert domain.should_import(with_alarm, "alarms") and not domain.should_import(without, "alarms")
    assert domain.should_import(without, "all") and not domain.should_import(with_alarm, "none")
    past = domain.EventData(uid="c", start=datetime.now(UTC) - timedelta(hours=1))
    assert domain.is_past_one_off(past, datetime.now(UTC))
    past.rrule = "FREQ=DAILY"
    assert not domain.is_past_one_off(past, datetime.now(UTC))


def test_conflict_rule_later_modification_wins():
    t1 = datetime(2030, 1, 1, tzinfo=UTC)
    t2 = t1 + timedelta(seconds=1)
    assert domain.resolve(reminder_changed=True, remote_changed=True, reminder_modified=t1, remote_modified=t2) == domain.Resolution(True, "remote")
    assert domain.resolve(reminder_changed=True, remote_changed=True, reminder_modified=t2, remote_modified=t1) == domain.Resolution(True, "eindr")
    assert domain.resolve(reminder_changed=False, remote_changed=True, reminder_modified=t2, remote_modified=t1) == domain.Resolution(False, "remote")
    assert domain.resolve(reminder_changed=True, remote_changed=True, reminder_modified=t1, remote_modified=None).winner == "eindr"


def test_malformed_icalendar_is_reported_not_raised_as_anything_else():
    import pytest

    for text in ("garbage", "BEGIN:VCALENDAR\nEND:VCALENDAR\n", "BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:x\nEND:VEVENT\nEND:VCALENDAR\n"):
        with pytest.raises(ical.MalformedEvent):
            ical.parse_calendar(text)


def test_backoff_grows_and_caps():
    assert [domain.backoff_s(n, 30, 3600) for n in (1, 2, 3, 10)] == [30, 60, 120, 3600]
