"""iCalendar (RFC 5545) <-> ``EventData``, through the ``icalendar`` library."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar

from .domain import (
    EINDR_PROP,
    EINDR_STATUS_PROP,
    EventData,
    all_day_start,
    inherit_series,
    normalize_rrule,
    override_uid,
    recurrence_key,
    skip_occurrences,
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


def _load(text: str | bytes) -> icalendar.Calendar:
    try:
        return icalendar.Calendar.from_ical(text)
    except (ValueError, KeyError, IndexError) as exc:
        raise MalformedEvent(f"unparseable iCalendar: {type(exc).__name__}") from exc


def parse_calendar(text: str | bytes) -> list[EventData]:
    """Master VEVENTs of a calendar object, each skipping the occurrences overridden in it."""
    obj = parse_object(text)
    if obj.master is None:
        raise MalformedEvent("no VEVENT in calendar object")
    return [obj.master]


@dataclass
class CalendarObject:
    """One CalDAV calendar object resource: a series (or single event) and the occurrences
    of it edited on their own (RFC 5545 RECURRENCE-ID components sharing its UID)."""

    master: EventData | None
    overrides: list[EventData] = field(default_factory=list)  # cancelled ones included (``cancelled``)

    def find(self, uid: str) -> EventData | None:
        if self.master is not None and self.master.uid == uid:
            return self.master
        return next((o for o in self.overrides if o.uid == uid), None)


def _rid_key(comp: icalendar.Event) -> str:
    try:
        value = comp.decoded("RECURRENCE-ID")
    except (KeyError, ValueError) as exc:
        raise MalformedEvent("RECURRENCE-ID is not a date or date-time") from exc
    if not isinstance(value, date):
        raise MalformedEvent("RECURRENCE-ID is not a date or date-time")
    return recurrence_key(value)


def parse_object(text: str | bytes) -> CalendarObject:
    """The series with its EXDATEs plus one EXDATE per overridden occurrence (see
    ``domain.exdate_for``), and each override as an event of its own."""
    cal = _load(text)
    masters, overrides = [], []
    for comp in cal.walk("VEVENT"):
        (overrides if comp.get("RECURRENCE-ID") is not None else masters).append(comp)
    if not masters and not overrides:
        raise MalformedEvent("no VEVENT in calendar object")
    master = _event(masters[0]) if masters else None
    out = CalendarObject(master)
    for comp in overrides:
        ev = _event(comp)
        key = _rid_key(comp)
        ev.master_uid, ev.recurrence_id = ev.uid, key
        ev.uid = override_uid(ev.uid, key)
        out.overrides.append(inherit_series(ev, master))
    if master is not None and out.overrides:
        skip_occurrences(master, [o.recurrence_id for o in out.overrides])
    return out


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


def _start_value(ev: EventData) -> datetime:
    if ev.start is not None:
        return ev.start.astimezone(UTC)
    if ev.tzid:
        return ev.local_start.replace(tzinfo=ZoneInfo(ev.tzid))
    return ev.local_start


def _exdate_values(ev: EventData, skip: set[str]) -> list[datetime]:
    """EXDATE values in DTSTART's frame, less the occurrences ``skip`` (keys) that an
    override in the same object already stands for: an EXDATE would hide the override."""
    if ev.start is not None:
        values = [x.replace(tzinfo=UTC) for x in ev.exdates]
    elif ev.tzid:
        zone = ZoneInfo(ev.tzid)
        values = [x.replace(tzinfo=zone) for x in ev.exdates]
    else:
        values = list(ev.exdates)
    return [v for v in values if recurrence_key(v) not in skip]


def _set_fields(vev: icalendar.Event, ev: EventData, *, now: datetime, series: bool, skip: set[str],
                event_minutes: int) -> None:
    """Write the fields Eindr syncs into ``vev``, leaving every other property (location,
    attendees, categories, the event's length, ...) as the calendar had it."""
    old_length = None
    if "DTEND" in vev and "DTSTART" in vev:
        try:
            old_length = vev.decoded("DTEND") - vev.decoded("DTSTART")
        except (KeyError, ValueError, TypeError):
            old_length = None
    for name in ("DTSTAMP", "LAST-MODIFIED", "SUMMARY", "DESCRIPTION", "DTSTART", "DTEND", EINDR_PROP, EINDR_STATUS_PROP):
        vev.pop(name, None)
    if series:
        for name in ("RRULE", "EXDATE"):
            vev.pop(name, None)
    vev.subcomponents = [c for c in vev.subcomponents if c.name != "VALARM"]
    vev.add("DTSTAMP", now)
    vev.add("LAST-MODIFIED", (ev.modified_at or now).astimezone(UTC).replace(microsecond=0))
    vev.add("SUMMARY", ev.summary)
    if ev.description:
        vev.add("DESCRIPTION", ev.description)
    start = _start_value(ev)
    vev.add("DTSTART", start)
    if "DURATION" not in vev:
        length = old_length if isinstance(old_length, timedelta) and old_length > timedelta(0) else timedelta(minutes=event_minutes)
        vev.add("DURATION", length)
    if series and ev.rrule:
        vev.add("RRULE", icalendar.vRecur.from_ical(ev.rrule))
        for x in _exdate_values(ev, skip):
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


def _finish(cal: icalendar.Calendar) -> str:
    try:
        cal.add_missing_timezones()
    except Exception:  # noqa: BLE001, S110 (a VTIMEZONE is a courtesy: servers accept TZID alone)
        pass
    return cal.to_ical().decode()


def build_calendar(ev: EventData, *, event_minutes: int = 15, now: datetime | None = None) -> str:
    """The VCALENDAR Eindr PUTs for a reminder."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    cal = icalendar.Calendar()
    cal.add("PRODID", "-//Eindr//Calendar sync//EN")
    cal.add("VERSION", "2.0")
    vev = icalendar.Event()
    vev.add("UID", ev.uid)
    _set_fields(vev, ev, now=now, series=True, skip=set(), event_minutes=event_minutes)
    cal.add_component(vev)
    return _finish(cal)


def _components(cal: icalendar.Calendar, master_uid: str) -> tuple[icalendar.Event | None, dict[str, icalendar.Event]]:
    master, overrides = None, {}
    for comp in cal.walk("VEVENT"):
        if str(comp.get("UID") or "").strip() != master_uid:
            continue
        if comp.get("RECURRENCE-ID") is None:
            master = master or comp
        else:
            overrides[_rid_key(comp)] = comp
    return master, overrides


def merge_event(text: str | bytes, ev: EventData, *, master_uid: str, recurrence_id: str | None,
                event_minutes: int = 15, now: datetime | None = None) -> str:
    """``text`` (the object as the server has it) with the series, or the occurrence
    ``recurrence_id``, rewritten from ``ev``; every other component and property is kept, so
    writing a reminder back never drops the occurrences edited in the calendar."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    cal = _load(text)
    master, overrides = _components(cal, master_uid)
    if recurrence_id is None:
        target = master
        if target is None:
            target = icalendar.Event()
            target.add("UID", master_uid)
            cal.add_component(target)
        _set_fields(target, ev, now=now, series=True, skip=set(overrides), event_minutes=event_minutes)
    else:
        target = overrides.get(recurrence_id)
        if target is None:
            raise MalformedEvent(f"no occurrence {recurrence_id} in this calendar object")
        _set_fields(target, ev, now=now, series=False, skip=set(), event_minutes=event_minutes)
    return _finish(cal)


def drop_occurrence(text: str | bytes, *, master_uid: str, recurrence_id: str, now: datetime | None = None) -> str | None:
    """``text`` without the override ``recurrence_id``, its occurrence now an EXDATE of the
    series (deleting one edited occurrence deletes that occurrence, not the series). None
    when nothing is left of the object."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    cal = _load(text)
    master, overrides = _components(cal, master_uid)
    target = overrides.get(recurrence_id)
    if target is None:
        return cal.to_ical().decode()
    cal.subcomponents.remove(target)
    if master is None:
        return None if not any(c.name == "VEVENT" for c in cal.subcomponents) else cal.to_ical().decode()
    value = target.decoded("RECURRENCE-ID")
    master.add("EXDATE", value)
    master.pop("DTSTAMP", None)
    master.add("DTSTAMP", now)
    return cal.to_ical().decode()
