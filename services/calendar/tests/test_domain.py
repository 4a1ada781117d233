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


_SERIES_LINES = [
    "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//t//EN",
    "BEGIN:VEVENT", "UID:s-1", "DTSTAMP:20301120T100000Z", "DTSTART;TZID=Europe/Amsterdam:20301202T170000",
    "DTEND;TZID=Europe/Amsterdam:20301202T180000", "RRULE:FREQ=WEEKLY", "EXDATE;TZID=Europe/Amsterdam:20301223T170000",
    "SUMMARY:Yoga", "LOCATION:Gym",
    "BEGIN:VALARM", "ACTION:DISPLAY", "DESCRIPTION:x", "TRIGGER:-PT10M", "END:VALARM", "END:VEVENT",
    "BEGIN:VEVENT", "UID:s-1", "DTSTAMP:20301120T100000Z", "RECURRENCE-ID;TZID=Europe/Amsterdam:20301209T170000",
    "DTSTART;TZID=Europe/Amsterdam:20301210T190000", "DTEND;TZID=Europe/Amsterdam:20301210T200000", "SUMMARY:Yoga (moved)",
    "END:VEVENT",
    "BEGIN:VEVENT", "UID:s-1", "DTSTAMP:20301120T100000Z", "RECURRENCE-ID;TZID=Europe/Amsterdam:20301216T170000",
    "DTSTART;TZID=Europe/Amsterdam:20301216T170000", "SUMMARY:Yoga", "STATUS:CANCELLED", "END:VEVENT",
    "END:VCALENDAR", ""]
SERIES = "\r\n".join(_SERIES_LINES)


def test_an_override_is_its_own_event_and_the_series_skips_it():
    obj = ical.parse_object(SERIES)
    assert obj.master.uid == "s-1"
    assert obj.master.exdates == [datetime(2030, 12, 9, 17), datetime(2030, 12, 16, 17), datetime(2030, 12, 23, 17)]
    moved, cancelled = obj.overrides
    assert moved.uid == "s-1#20301209T160000Z" and moved.master_uid == "s-1" and moved.recurrence_id == "20301209T160000Z"
    assert moved.local_start == datetime(2030, 12, 10, 19) and moved.tzid == "Europe/Amsterdam"
    assert moved.alarms == [-600] and moved.has_alarm and moved.reminder_id is None  # rings like its series
    assert cancelled.cancelled and not moved.cancelled
    assert ical.parse_calendar(SERIES)[0].exdates == obj.master.exdates


def test_writing_the_series_or_an_occurrence_keeps_everything_else():
    obj = ical.parse_object(SERIES)
    series = obj.master
    series.summary, series.reminder_id = "Yoga class", REMINDER["id"]
    text = ical.merge_event(SERIES, series, master_uid="s-1", recurrence_id=None)
    assert text.count("RECURRENCE-ID") == 2 and "LOCATION:Gym" in text and "DURATION:PT1H" in text
    assert "20301209T170000" not in text.split("RECURRENCE-ID")[0]  # no EXDATE hides the override
    assert "EXDATE;TZID=Europe/Amsterdam:20301223T170000" in text  # a plain EXDATE stays
    back = ical.parse_object(text)
    assert back.master.fingerprint() == series.fingerprint() and back.master.reminder_id == REMINDER["id"]
    moved = back.overrides[0]
    moved.summary = "Yoga (moved again)"
    text = ical.merge_event(text, moved, master_uid="s-1", recurrence_id=moved.recurrence_id)
    again = ical.parse_object(text)
    assert [o.summary for o in again.overrides] == ["Yoga (moved again)", "Yoga"]
    assert again.overrides[0].fingerprint() == moved.fingerprint()
    assert again.master.fingerprint() == series.fingerprint()
    # deleting that occurrence: the override goes, the series skips it with an EXDATE
    rest = ical.parse_object(ical.drop_occurrence(text, master_uid="s-1", recurrence_id=moved.recurrence_id))
    assert [o.uid for o in rest.overrides] == ["s-1#20301216T160000Z"]
    assert datetime(2030, 12, 9, 17) in rest.master.exdates


def test_google_instance_exception_keys_and_series_body():
    item = {"id": "abc_20301209T160000Z", "recurringEventId": "abc", "status": "confirmed", "summary": "Moved",
            "originalStartTime": {"dateTime": "2030-12-09T17:00:00+01:00", "timeZone": "Europe/Amsterdam"},
            "start": {"dateTime": "2030-12-10T19:00:00+01:00", "timeZone": "Europe/Amsterdam"},
            "extendedProperties": {"private": {"eindrReminderId": REMINDER["id"]}}}
    ev = google.parse_event(item)
    assert ev.master_uid == "abc" and ev.recurrence_id == "20301209T160000Z" and ev.reminder_id is None
    assert google.original_key({"date": "2030-12-09"}) == "20301209"
    series = domain.reminder_to_event({**REMINDER, "exdates": ["2030-12-08T17:00:00", "2030-12-15T17:00:00"]})
    body = google.event_body(series, keep_exceptions={"20301208T160000Z"})
    assert body["recurrence"] == ["RRULE:FREQ=WEEKLY;BYDAY=MO", "EXDATE;TZID=Europe/Amsterdam:20301215T170000"]
    assert "recurrence" not in google.event_body(ev, instance=True)


def test_exdate_for_an_occurrence_in_the_series_frame():
    zoned = domain.EventData(uid="z", local_start=datetime(2030, 12, 2, 17), tzid="Europe/Amsterdam", rrule="FREQ=WEEKLY")
    fixed = domain.EventData(uid="f", start=datetime(2030, 12, 2, 16, tzinfo=UTC), rrule="FREQ=WEEKLY")
    allday = domain.EventData(uid="a", local_start=datetime(2030, 12, 2, 9), all_day=True, rrule="FREQ=WEEKLY")
    assert domain.exdate_for(zoned, "20301209T160000Z") == datetime(2030, 12, 9, 17)
    assert domain.exdate_for(fixed, "20301209T160000Z") == datetime(2030, 12, 9, 16)
    assert domain.exdate_for(allday, "20301209") == datetime(2030, 12, 9, 9)


def test_a_fixed_reminder_names_its_offset_not_a_zone():
    # the reminders API gives a fixed (due_at) reminder's timezone as its UTC offset
    fixed = {**REMINDER, "tz_mode": "fixed", "timezone": "+01:00", "local_due": None, "due_at": "2030-12-02T16:00:00+00:00",
             "exdates": ["2030-12-09T17:00:00"]}
    assert domain.reminder_to_event(fixed).exdates == [datetime(2030, 12, 9, 16)]
