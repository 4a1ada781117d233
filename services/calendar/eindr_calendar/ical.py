"""iCalendar (RFC 5545) <-> ``EventData``, through the ``icalendar`` library."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import icalendar

from .domain import (
    EINDR_PROP,
    EINDR_STATUS_PROP,
    EventData,
    all_day_start,
    normalize_rrule,
)


class MalformedEvent(ValueError):
    """A calendar object that cannot be read as an event (it is skipped and logged)."""


def _naive_in(value: datetime, tzid: str | None) -> tuple[datetime | None, datetime | None, str | None]:
    """(fixed instant, local wall clock, tzid) of an iCalendar DATE-TIME."""
    if value.tzinfo is None:
        return None, value, None  # floating
    key = getattr(value.tzinfo, "key", None) or tzid
    if key and key.upper() not in ("UTC", "Z", "ETC/UTC"):
        return None, value.replace(tzinfo=None), key
    return value.astimezone(UTC), None, None


def parse_calendar(text: str | bytes) -> list[EventData]:
    """Master VEVENTs of a calendar object (recurrence overrides are folded into the master)."""
    try:
        cal = icalendar.Calendar.from_ical(text)
    except (ValueError, KeyError, IndexError) as exc:
        raise MalformedEvent(f"unparseable iCalendar: {type(exc).__name__}") from exc
    events = []
    for comp in cal.walk("VEVENT"):
        if comp.get("RECURRENCE-ID") is not None:
            continue
        events.append(_event(comp))
    if not events:
        raise MalformedEvent("no VEVENT in calendar object")
    return events


def _event(comp: icalendar.Event) -> EventData:
    uid = str(comp.get("UID") or "").strip()
    if not uid:
        raise MalformedEvent("VEVENT without UID")
    try:
        dtstart = comp.decoded("DTSTART")
    except (KeyError, ValueError) as exc:
        raise MalformedEvent("VEVENT without a valid DTSTART") from exc
    ev = EventData(uid=uid)
    ev.summary = str(comp.get("SUMMARY") or "")
    desc = comp.get("DESCRIPTION")
    ev.description = str(desc) if desc is not None and str(desc) else None
    tzid = comp["DTSTART"].params.get("TZID") if "DTSTART" in comp else None
    if isinstance(dtstart, datetime):
        ev.start, ev.local_start, ev.tzid = _naive_in(dtstart, tzid)
    elif isinstance(dtstart, date):
        ev.all_day = True
        ev.local_start = all_day_start(dtstart)
    else:
        raise MalformedEvent("DTSTART is neither a date nor a date-time")
    rrule = comp.get("RRULE")
    if rrule is not None:
        rules = rrule if isinstance(rrule, list) else [rrule]
        ev.rrule = normalize_rrule(rules[0].to_ical().decode())
    for ex in _as_list(comp.get("EXDATE")):
        for item in ex.dts:
            value = item.dt
            if isinstance(value, datetime):
                if ev.start is not None:
                    ev.exdates.append(value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value)
                else:
                    ev.exdates.append(_naive_in(value, tzid)[1] or value.astimezone(UTC).replace(tzinfo=None))
            elif isinstance(value, date):
                ev.exdates.append(datetime.combine(value, (ev.local_start or datetime.min).time()))
    for alarm in comp.walk("VALARM"):
        ev.has_alarm = True
        trigger = alarm.get("TRIGGER")
        if trigger is None:
            continue
        value = trigger.dt
        if isinstance(value, timedelta):
            if str(trigger.params.get("RELATED", "START")).upper() == "START":
                ev.alarms.append(int(value.total_seconds()))
        elif isinstance(value, datetime):
            start = ev.start or (ev.local_start.replace(tzinfo=UTC) if ev.local_start else None)
            if start is not None and value.tzinfo is not None and ev.start is not None:
                ev.alarms.append(int((value - start).total_seconds()))
    rid = comp.get(EINDR_PROP)
    ev.reminder_id = str(rid) if rid else None
    ev.completed = str(comp.get(EINDR_STATUS_PROP) or "").lower() == "completed"
    ev.cancelled = str(comp.get("STATUS") or "").upper() == "CANCELLED"
    for prop in ("LAST-MODIFIED", "DTSTAMP"):
        if comp.get(prop) is not None:
            try:
                value = comp.decoded(prop)
            except (ValueError, KeyError):
                continue
            if isinstance(value, datetime):
                ev.modified_at = value if value.tzinfo else value.replace(tzinfo=UTC)
                break
    return ev


def _as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def build_calendar(ev: EventData, *, event_minutes: int = 15, now: datetime | None = None) -> str:
    """The VCALENDAR Eindr PUTs for a reminder."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    cal = icalendar.Calendar()
    cal.add("PRODID", "-//Eindr//Calendar sync//EN")
    cal.add("VERSION", "2.0")
    vev = icalendar.Event()
    vev.add("UID", ev.uid)
    vev.add("DTSTAMP", now)
    modified = (ev.modified_at or now).astimezone(UTC).replace(microsecond=0)
    vev.add("LAST-MODIFIED", modified)
    vev.add("SUMMARY", ev.summary)
    if ev.description:
        vev.add("DESCRIPTION", ev.description)
    if ev.start is not None:
        vev.add("DTSTART", ev.start.astimezone(UTC))
        exdates = [x.replace(tzinfo=UTC) for x in ev.exdates]
    elif ev.tzid:
        from zoneinfo import ZoneInfo

        zone = ZoneInfo(ev.tzid)
        vev.add("DTSTART", ev.local_start.replace(tzinfo=zone))
        exdates = [x.replace(tzinfo=zone) for x in ev.exdates]
    else:
        vev.add("DTSTART", ev.local_start)
        exdates = list(ev.exdates)
    vev.add("DURATION", timedelta(minutes=event_minutes))
    if ev.rrule:
        vev.add("RRULE", icalendar.vRecur.from_ical(ev.rrule))
    for x in exdates:
        vev.add("EXDATE", x)
    for offset in ev.alarms:
        alarm = icalendar.Alarm()
        alarm.add("ACTION", "DISPLAY")
        alarm.add("DESCRIPTION", ev.summary or "Reminder")
        alarm.add("TRIGGER", timedelta(seconds=offset))
        vev.add_component(alarm)
    if ev.reminder_id:
        vev.add(EINDR_PROP, ev.reminder_id)
    if ev.completed:
        vev.add(EINDR_STATUS_PROP, "completed")
    cal.add_component(vev)
    if ev.tzid and ev.start is None:
        try:
            cal.add_missing_timezones()
        except Exception:  # noqa: BLE001, S110 (a VTIMEZONE is a courtesy: servers accept TZID alone)
            pass
    return cal.to_ical().decode()
