"""Habit detection rules on synthetic embeddings (the real-model path is in test_history)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
from eindr_history import domain

CALL = np.array([1.0, 0.0, 0.0], dtype=np.float32)
CALL_LIKE = np.array([0.95, 0.3, 0.0], dtype=np.float32)  # cosine ≈ 0.95
MILK = np.array([0.0, 1.0, 0.0], dtype=np.float32)
SUNDAY = datetime(2026, 11, 1, 18, 0)  # a Sunday


def ev(title: str, when: datetime, tz: str | None = "Europe/Amsterdam") -> domain.ReminderEvent:
    return domain.ReminderEvent(title=title, local=when, timezone=tz)


def test_three_sundays_at_six_form_a_weekly_habit():
    evs = [ev("Call mum", SUNDAY), ev("call mum", SUNDAY + timedelta(days=7, minutes=10)),
           ev("Call my mum", SUNDAY + timedelta(days=14, minutes=-5))]
    habits = domain.detect_habits(evs, [CALL, CALL, CALL_LIKE])
    assert len(habits) == 1
    h = habits[0]
    assert (h.title, h.weekday, h.minute_of_day, h.occurrences, h.timezone) == ("call mum", 6, 18 * 60, 3, "Europe/Amsterdam")
    assert h.rrule == "FREQ=WEEKLY;BYDAY=SU;BYHOUR=18;BYMINUTE=0"
    assert h.text == "Make 'call mum' a weekly reminder on Sundays at 18:00?"


def test_no_habit_when_the_pattern_is_incomplete():
    two = [ev("Call mum", SUNDAY), ev("Call mum", SUNDAY + timedelta(days=7))]
    assert domain.detect_habits(two, [CALL, CALL]) == []
    other_days = [ev("Call mum", SUNDAY), ev("Call mum", SUNDAY + timedelta(days=8)), ev("Call mum", SUNDAY + timedelta(days=16))]
    assert domain.detect_habits(other_days, [CALL] * 3) == []
    other_hours = [ev("Call mum", SUNDAY.replace(hour=8)), ev("Call mum", SUNDAY + timedelta(days=7, hours=-5)),
                   ev("Call mum", SUNDAY + timedelta(days=14, hours=3))]
    assert domain.detect_habits(other_hours, [CALL] * 3) == []
    different_things = [ev("Call mum", SUNDAY), ev("Buy milk", SUNDAY + timedelta(days=7)), ev("Call mum", SUNDAY + timedelta(days=14))]
    assert domain.detect_habits(different_things, [CALL, MILK, CALL]) == []
    same_day_thrice = [ev("Call mum", SUNDAY), ev("Call mum", SUNDAY + timedelta(minutes=5)), ev("Call mum", SUNDAY + timedelta(minutes=9))]
    assert domain.detect_habits(same_day_thrice, [CALL] * 3) == []


def test_known_suggestions_are_never_made_again():
    evs = [ev("Call mum", SUNDAY + timedelta(days=7 * i)) for i in range(4)]
    assert len(domain.detect_habits(evs, [CALL] * 4)) == 1
    assert domain.detect_habits(evs, [CALL] * 4, known=[(6, 18 * 60 + 15, CALL_LIKE)]) == []
    # A dismissed "buy milk" habit does not hide "call mum" at the same time.
    assert len(domain.detect_habits(evs, [CALL] * 4, known=[(6, 18 * 60, MILK)])) == 1


def test_reminder_event_reads_the_slots_contract():
    e = domain.reminder_event({"title": " Call mum ", "due_at": "2026-11-01T17:00:00+00:00", "timezone": "Europe/Amsterdam"}, SUNDAY)
    assert e == domain.ReminderEvent("Call mum", datetime(2026, 11, 1, 18, 0), "Europe/Amsterdam")
    assert domain.reminder_event({"title": "x", "local_due": "2026-11-01T18:00:00"}, SUNDAY).local == datetime(2026, 11, 1, 18, 0)
    assert domain.reminder_event({"title": "x", "due_at": "2026-11-01T18:00:00", "rrule": "FREQ=DAILY"}, SUNDAY) is None
    assert domain.reminder_event({"due_at": "2026-11-01T18:00:00"}, SUNDAY) is None
    assert domain.reminder_event({"title": "x", "due_at": "tomorrow"}, SUNDAY) is None
    assert domain.reminder_event(["not", "a", "dict"], SUNDAY) is None


def test_next_local_finds_the_coming_weekday():
    wed = datetime(2026, 11, 4, 12, 0)
    assert domain.next_local(6, 18 * 60, wed) == datetime(2026, 11, 8, 18, 0)
    sun_late = datetime(2026, 11, 8, 19, 0)
    assert domain.next_local(6, 18 * 60, sun_late) == datetime(2026, 11, 15, 18, 0)


def test_rrf_and_neutralise():
    fused = domain.rrf(["a", "b"], ["b", "c"])
    assert fused[0][0] == "b" and {f[0] for f in fused} == {"a", "b", "c"}
    out = domain.neutralise_json({"<k>": ["[x](javascript:1)", 3, {"t": "<script>"}]})
    assert out == {"&lt;k&gt;": ["&#91;x&#93;(javascript:1)", 3, {"t": "&lt;script&gt;"}]}
