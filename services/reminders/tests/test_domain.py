"""Pure rules: recurrence on the wall clock across DST, RRULE cases, offsets, quiet hours."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta

import pytest

from eindr_reminders.domain import (
    DomainError,
    Schedule,
    parse_offset,
    quiet_hold_until,
    resolve_zone,
    search_grams,
)

NY = resolve_zone("America/New_York")


def utc(*a) -> datetime:
    return datetime(*a, tzinfo=UTC)


def occ(schedule: Schedule, start: datetime, n: int) -> list[str]:
    return [o.strftime("%Y-%m-%dT%H:%MZ") for o in schedule.occurrences(start, limit=n)]


def test_daily_0800_new_york_keeps_local_time_across_march_change():
    s = Schedule.build(datetime(2026, 3, 6, 8, 0), NY, "FREQ=DAILY")
    assert occ(s, utc(2026, 3, 6), 4) == [
        "2026-03-06T13:00Z",
        "2026-03-07T13:00Z",
        "2026-03-08T12:00Z",
        "2026-03-09T12:00Z",
    ]


def test_daily_0800_new_york_keeps_local_time_across_november_change():
    s = Schedule.build(datetime(2026, 10, 30, 8, 0), NY, "FREQ=DAILY")
    assert occ(s, utc(2026, 10, 31), 3) == ["2026-10-31T12:00Z", "2026-11-01T13:00Z", "2026-11-02T13:00Z"]


def test_nonexistent_local_time_moves_forward_by_the_gap():
    # 02:30 on 2026-03-08 does not exist in New York: read with the pre-gap offset (EST) = 03:30 EDT.
    s = Schedule.build(datetime(2026, 3, 7, 2, 30), NY, "FREQ=DAILY;COUNT=3")
    assert occ(s, utc(2026, 3, 1), 3) == ["2026-03-07T07:30Z", "2026-03-08T07:30Z", "2026-03-09T06:30Z"]
    one_off = Schedule.build(datetime(2026, 3, 8, 2, 30), NY)
    assert one_off.first_utc == utc(2026, 3, 8, 7, 30)
    assert one_off.first_utc.astimezone(NY).strftime("%H:%M %Z") == "03:30 EDT"


def test_ambiguous_local_time_is_the_first_instance():
    s = Schedule.build(datetime(2026, 10, 31, 1, 30), NY, "FREQ=DAILY;COUNT=3")
    # 01:30 on 2026-11-01 happens twice; the first (EDT, UTC-4) is chosen, and only once.
    assert occ(s, utc(2026, 10, 1), 3) == ["2026-10-31T05:30Z", "2026-11-01T05:30Z", "2026-11-02T06:30Z"]


def test_weekly_byday_and_until():
    s = Schedule.build(datetime(2026, 6, 1, 9, 0), NY, "FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20260610T235959Z")
    assert occ(s, utc(2026, 5, 1), 10) == [
        "2026-06-01T13:00Z",
        "2026-06-03T13:00Z",
        "2026-06-08T13:00Z",
        "2026-06-10T13:00Z",
    ]


def test_until_without_z_is_local():
    s = Schedule.build(datetime(2026, 6, 1, 9, 0), NY, "FREQ=DAILY;UNTIL=20260603")
    assert len(occ(s, utc(2026, 5, 1), 10)) == 3


def test_last_friday_of_month():
    s = Schedule.build(datetime(2026, 1, 1, 17, 0), NY, "FREQ=MONTHLY;BYDAY=-1FR")
    assert occ(s, utc(2026, 1, 1), 4) == [
        "2026-01-30T22:00Z",
        "2026-02-27T22:00Z",
        "2026-03-27T21:00Z",
        "2026-04-24T21:00Z",
    ]


def test_bymonthday_31_skips_short_months():
    s = Schedule.build(datetime(2026, 1, 31, 9, 0), resolve_zone("UTC"), "FREQ=MONTHLY;BYMONTHDAY=31")
    assert occ(s, utc(2026, 1, 1), 4) == [
        "2026-01-31T09:00Z",
        "2026-03-31T09:00Z",
        "2026-05-31T09:00Z",
        "2026-07-31T09:00Z",
    ]


def test_count_and_exdate():
    s = Schedule.build(
        datetime(2026, 6, 1, 9, 0), resolve_zone("UTC"), "FREQ=DAILY;COUNT=4", exdates=[datetime(2026, 6, 2, 9, 0)]
    )
    assert occ(s, utc(2026, 5, 1), 10) == ["2026-06-01T09:00Z", "2026-06-03T09:00Z", "2026-06-04T09:00Z"]


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=MONTHLY;BYMONTHDAY=32",
        "FREQ=DAILY;BYHOUR=25",
        "FREQ=FOO",
        "garbage",
        "FREQ=DAILY;INTERVAL=0",
        "FREQ=WEEKLY;BYDAY=XX",
        "FREQ=SECONDLY",
        "FREQ=DAILY;COUNT=2;UNTIL=20270101T000000Z",
        "FREQ=DAILY;FOO=1",
        "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
        "FREQ=MONTHLY;BYDAY=-60FR",
        "FREQ=DAILY;UNTIL=2027",
        "INTERVAL=2",
    ],
)
def test_bad_rrules_are_refused_on_the_rrule_field(rule):
    with pytest.raises(DomainError) as info:
        s = Schedule.build(datetime(2026, 1, 1, 9), NY, rule)
        s.validate_fires()
    assert info.value.field == "rrule"


def test_alarms_order_fires_across_occurrences():
    s = Schedule.build(datetime(2026, 1, 30, 9, 0), resolve_zone("UTC"), "FREQ=DAILY;COUNT=2", alarms=[0, -600, -86400])
    fires = []
    nxt = s.next_fire(not_before=utc(2026, 1, 1))
    while nxt:
        fires.append((nxt[2].strftime("%d %H:%M"), nxt[1]))
        nxt = s.next_fire(after=(nxt[2], nxt[0]))
    assert fires == [
        ("29 09:00", -86400),
        ("30 08:50", -600),
        ("30 09:00", 0),
        ("30 09:00", -86400),
        ("31 08:50", -600),
        ("31 09:00", 0),
    ]


@pytest.mark.parametrize(
    "value,seconds",
    [
        (0, 0),
        ("0", 0),
        (-10, -600),
        ("-10m", -600),
        ("-1d", -86400),
        ("-1h30m", -5400),
        ("-PT10M", -600),
        ("-P1D", -86400),
    ],
)
def test_offsets(value, seconds):
    assert parse_offset(value, "alarms[0]") == seconds


@pytest.mark.parametrize("value", [5, "10m", "+1h", "PT5M", "soon", "-30d", True])
def test_offsets_after_due_or_garbage_are_refused(value):
    with pytest.raises(DomainError):
        parse_offset(value, "alarms[0]")


def test_unknown_timezone():
    with pytest.raises(DomainError) as info:
        resolve_zone("Mars/Olympus")
    assert info.value.field == "timezone"
    assert resolve_zone("+05:30").utcoffset(None) == timedelta(hours=5, minutes=30)


def test_quiet_hours_wrapping_midnight():
    ams = resolve_zone("Europe/Amsterdam")
    start, end = time(22, 0), time(7, 0)
    # 23:30 local (22:30Z in winter) is held until 07:00 local next day (06:00Z)
    assert quiet_hold_until(utc(2026, 1, 10, 22, 30), ams, start, end) == utc(2026, 1, 11, 6, 0)
    # 03:00 local is held until 07:00 the same day
    assert quiet_hold_until(utc(2026, 1, 11, 2, 0), ams, start, end) == utc(2026, 1, 11, 6, 0)
    assert quiet_hold_until(utc(2026, 1, 11, 6, 0), ams, start, end) is None  # the end is not quiet
    assert quiet_hold_until(utc(2026, 1, 11, 12, 0), ams, start, end) is None
    # a daytime window (13:00-14:00 local = 12:00-13:00Z)
    assert quiet_hold_until(utc(2026, 1, 11, 12, 15), ams, time(13, 0), time(14, 0)) == utc(2026, 1, 11, 13, 0)


def test_search_keys_of_a_substring_are_keys_of_the_text_whatever_the_case():
    """The index condition is necessary for the ILIKE match: every key of q is a key of any
    text that contains q case-insensitively (ASCII case, and the letters a libc lower()
    maps onto ASCII: İ, the Kelvin sign, Turkish ı)."""
    rng = random.Random(3)
    alphabet = "abcXYZ iIıİkK\u212aéÉü€😀\n_%"
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        start = rng.randint(0, len(text))
        piece = text[start : start + rng.randint(0, 10)]
        query = "".join(c.swapcase() if c.isascii() and rng.random() < 0.5 else c for c in piece)
        assert set(search_grams(query)) <= set(search_grams(text)), (text, query)
    assert search_grams("İstanbul") == search_grams("istanbul") and search_grams("\u212aelvin") == search_grams(
        "kelvin"
    )
    assert search_grams("ab") == [] and search_grams(None, "", "abc") == ["abc"]
    assert search_grams("Été", "ÜBER") == ["\x1abe", "\x1at\x1a", "ber"]  # other non-ASCII: one placeholder
