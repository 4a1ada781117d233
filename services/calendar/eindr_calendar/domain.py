"""Pure rules of calendar sync: reminder <-> event mapping, fingerprints, the import rule,
the conflict rule. No I/O here.

Both providers are mapped to one neutral ``EventData`` (CalDAV through iCalendar,
Google through its event JSON), so the rules below are written once.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

EINDR_PROP = "X-EINDR-REMINDER-ID"  # CalDAV: the reminder an event was written for
EINDR_STATUS_PROP = "X-EINDR-STATUS"
GOOGLE_PRIVATE_KEY = "eindrReminderId"  # Google: extendedProperties.private
GOOGLE_STATUS_KEY = "eindrStatus"
UID_DOMAIN = "eindr.app"
ALL_DAY_LOCAL_TIME = time(9, 0)  # an all-day event becomes a reminder at 09:00 local
MAX_TITLE = 500
MAX_NOTES = 10_000
MAX_ALARMS = 10
MAX_LEAD_S = 28 * 86400
PAST_GRACE = timedelta(minutes=5)


@dataclass
class EventData:
    """An event as both providers describe it, reduced to what sync cares about."""

    uid: str
    summary: str = ""
    description: str | None = None
    # exactly one of: start (aware, fixed instant), local_start (+ tzid: zoned, or no tzid: floating)
    start: datetime | None = None
    local_start: datetime | None = None
    tzid: str | None = None
    all_day: bool = False
    rrule: str | None = None
    exdates: list[datetime] = field(default_factory=list)  # local wall clock (or UTC for fixed)
    alarms: list[int] = field(default_factory=list)  # seconds relative to start, <= 0
    has_alarm: bool = False
    reminder_id: str | None = None  # set when Eindr wrote this event
    completed: bool = False
    modified_at: datetime | None = None  # the source's own modification time
    cancelled: bool = False
    # One edited occurrence of a series (iCalendar RECURRENCE-ID override, Google instance
    # exception): the series' UID and the occurrence replaced, as ``recurrence_key`` text.
    # ``uid`` is then the occurrence's own key (``override_uid``), unique in its calendar.
    master_uid: str | None = None
    recurrence_id: str | None = None

    def fingerprint(self) -> str:
        return fingerprint(self)


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def fingerprint(ev: EventData) -> str:
    """What a user would see change: equal fingerprints mean nothing to sync."""
    start = ev.start.astimezone(UTC) if ev.start is not None else None
    body = {
        "s": ev.summary.strip(),
        "d": (ev.description or "").strip() or None,
        "t": _iso(start),
        "l": _iso(ev.local_start),
        "z": ev.tzid,
        "a": ev.all_day,
        "r": normalize_rrule(ev.rrule),
        "x": sorted(_iso(x) for x in ev.exdates),
        "al": sorted(set(ev.alarms)),
        "c": ev.completed,
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32]


def normalize_rrule(rule: str | None) -> str | None:
    if not rule:
        return None
    text = rule.strip()
    if text.upper().startswith("RRULE:"):
        text = text[6:]
    parts = sorted((p.strip().upper() for p in text.split(";") if p.strip()), key=lambda p: (not p.startswith("FREQ="), p))
    return ";".join(parts) or None


# ---------------------------------------------------------------- alarms

_DUR = re.compile(r"^([+-])?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_offset(text: str | int) -> int:
    """A reminders-service lead offset ("0", "-10m", "-1d2h", or minutes) in seconds."""
    if isinstance(text, int):
        return text * 60
    t = text.strip().lower()
    if t.lstrip("+-") == "0":
        return 0
    m = _DUR.match(t)
    if m is None or not any(m.groups()[1:]):
        raise ValueError(f"not a lead offset: {text!r}")
    sign, w, d, h, mi, s = m.groups()
    secs = int(w or 0) * 604800 + int(d or 0) * 86400 + int(h or 0) * 3600 + int(mi or 0) * 60 + int(s or 0)
    return -secs if sign == "-" else secs


def clamp_alarms(offsets: list[int]) -> list[int]:
    """Alarms as the reminders API accepts them: <= 0, at most 28 days ahead, at most 10."""
    out = sorted({max(-MAX_LEAD_S, min(0, int(o))) for o in offsets})
    return out[:MAX_ALARMS]


# ---------------------------------------------------------------- reminder -> event

def reminder_uid(reminder_id: str) -> str:
    return f"eindr-{reminder_id}@{UID_DOMAIN}"


def _parse_dt(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def reminder_to_event(reminder: dict[str, Any], *, uid: str | None = None) -> EventData:
    """The event Eindr writes for a reminder (the reminders API's JSON)."""
    tz_mode = reminder.get("tz_mode") or "zoned"
    local_due = _parse_dt(reminder.get("local_due"))
    if local_due is not None and local_due.tzinfo is not None:
        local_due = local_due.replace(tzinfo=None)
    zone = reminder.get("timezone") or "UTC"
    ev = EventData(uid=uid or reminder_uid(str(reminder["id"])))
    ev.summary = (reminder.get("title") or "").strip()
    ev.description = reminder.get("notes") or None
    if tz_mode == "fixed" or local_due is None:
        due = _parse_dt(reminder.get("due_at"))
        ev.start = due.astimezone(UTC) if due else None
        ev.exdates = [_to_utc_naive(_parse_dt(x), zone) for x in reminder.get("exdates") or []]
    else:
        ev.local_start = local_due
        ev.tzid = zone
        ev.exdates = [_naive(_parse_dt(x), zone) for x in reminder.get("exdates") or []]
    ev.rrule = normalize_rrule(reminder.get("rrule"))
    ev.completed = reminder.get("status") == "completed"
    ev.alarms = [] if ev.completed else clamp_alarms([parse_offset(a) for a in reminder.get("alarms") or ["0"]])
    ev.has_alarm = bool(ev.alarms)
    ev.reminder_id = str(reminder["id"])
    ev.modified_at = _parse_dt(reminder.get("updated_at"))
    return ev


_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")


def reminder_tz(zone: str | None) -> tzinfo:
    """A reminder's ``timezone``: an IANA name, or for a fixed reminder its UTC offset
    (``+01:00``)."""
    if zone:
        m = _OFFSET.match(zone.strip())
        if m:
            delta = timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))
            return timezone(-delta if m.group(1) == "-" else delta)
    return _zone(zone) or UTC


def _naive(value: datetime, zone: str) -> datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(reminder_tz(zone)).replace(tzinfo=None)


def _to_utc_naive(value: datetime, zone: str) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=reminder_tz(zone))
    return value.astimezone(UTC).replace(tzinfo=None)


def reminder_is_live(reminder: dict[str, Any]) -> bool:
    """Cancelled reminders have no event (the event is deleted)."""
    return reminder.get("status") != "cancelled"


# ---------------------------------------------------------------- event -> reminder

def should_import(ev: EventData, import_mode: str) -> bool:
    """Events Eindr wrote are never imported as new reminders (no echo loop)."""
    if ev.reminder_id or ev.cancelled or import_mode == "none":
        return False
    return import_mode == "all" or ev.has_alarm


def is_past_one_off(ev: EventData, now: datetime) -> bool:
    if ev.rrule:
        return False
    at = event_instant(ev)
    return at is not None and at < now - PAST_GRACE


def event_instant(ev: EventData) -> datetime | None:
    if ev.start is not None:
        return ev.start
    if ev.local_start is None:
        return None
    local = ev.local_start
    zone = _zone(ev.tzid) or UTC
    return local.replace(tzinfo=zone)


def _zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _minutes_or_duration(seconds: int) -> int | str:
    return seconds // 60 if seconds % 60 == 0 else f"{'-' if seconds < 0 else ''}{abs(seconds)}s"


def event_to_reminder_fields(ev: EventData, *, include_alarms: bool = True) -> dict[str, Any]:
    """The reminders API body (create or full patch of the synced fields) for an event."""
    body: dict[str, Any] = {
        "title": (ev.summary.replace("\x00", "").strip() or "(untitled event)")[:MAX_TITLE],
        "notes": (ev.description.replace("\x00", "")[:MAX_NOTES] if ev.description else None),
    }
    if ev.start is not None:
        body.update(due_at=ev.start.isoformat(), local_due=None, timezone=None)
        body["exdates"] = [x.replace(tzinfo=UTC).isoformat() for x in ev.exdates]
    else:
        local = ev.local_start
        zone = ev.tzid if _zone(ev.tzid) else None
        body.update(due_at=None, local_due=local.isoformat() if local else None, timezone=zone)
        body["exdates"] = [x.isoformat() for x in ev.exdates]
    body["rrule"] = normalize_rrule(ev.rrule)
    if include_alarms:
        body["alarms"] = [_minutes_or_duration(a) for a in (clamp_alarms(ev.alarms) or [0])]
    return body


def create_body(ev: EventData) -> dict[str, Any]:
    body = {k: v for k, v in event_to_reminder_fields(ev).items() if v is not None and v != []}
    body["source"] = "calendar"
    return body


def patch_body(ev: EventData) -> dict[str, Any]:
    """Patch of an existing reminder from an edited event. For an event Eindr wrote for a
    completed reminder (alarms removed on purpose) the alarms are left alone."""
    body = event_to_reminder_fields(ev, include_alarms=not ev.completed)
    if body.get("due_at") is not None:
        body.pop("local_due"), body.pop("timezone")
    else:
        body.pop("due_at")
        if body.get("timezone") is None:
            body.pop("timezone")
    return body


# ---------------------------------------------------------------- edited occurrences of a series
#
# The rule: the series' reminder skips every occurrence the calendar overrides (its EXDATEs
# gain the occurrence's original start), and each edited occurrence that is not cancelled
# becomes a one-off reminder of its own (``source=calendar``), imported when it or its
# series has an alarm (or import_mode=all), skipped when past. A cancelled occurrence is an
# EXDATE only. Removing an override (the occurrence is back in the series) deletes its
# reminder and drops the EXDATE again.

def recurrence_key(value: datetime | date) -> str:
    """Canonical text of an occurrence's original start: UTC ``YYYYMMDDTHHMMSSZ`` for an
    instant, ``YYYYMMDDTHHMMSS`` for floating time, ``YYYYMMDD`` for a date."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.strftime("%Y%m%dT%H%M%S")
        return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return value.strftime("%Y%m%d")


def parse_recurrence_key(key: str) -> datetime | date:
    if len(key) == 8:
        return date(int(key[:4]), int(key[4:6]), int(key[6:8]))
    at = datetime.strptime(key.rstrip("Z"), "%Y%m%dT%H%M%S")
    return at.replace(tzinfo=UTC) if key.endswith("Z") else at


def override_uid(master_uid: str, key: str) -> str:
    return f"{master_uid}#{key}"


def exdate_for(master: EventData, key: str) -> datetime:
    """The EXDATE, in the series' own frame (see ``EventData.exdates``), that skips the
    occurrence ``key`` of ``master``."""
    value = parse_recurrence_key(key)
    if not isinstance(value, datetime):
        return datetime.combine(value, (master.local_start or datetime.min).time())
    if master.start is not None:  # fixed instants: UTC wall clock
        return (value.astimezone(UTC) if value.tzinfo else value).replace(tzinfo=None)
    if value.tzinfo is None:
        return value
    zone = _zone(master.tzid)
    return value.astimezone(zone).replace(tzinfo=None) if zone else value.astimezone(UTC).replace(tzinfo=None)


def skip_occurrences(master: EventData, keys: list[str]) -> None:
    for key in keys:
        try:
            x = exdate_for(master, key)
        except ValueError:
            continue
        if x not in master.exdates:
            master.exdates.append(x)
    master.exdates.sort()


def inherit_series(override: EventData, master: EventData | None) -> EventData:
    """An override without alarms of its own rings like its series (calendar apps copy the
    series' alarms into each edited occurrence; a bare override should not go silent)."""
    if master is not None and not override.alarms and not override.has_alarm:
        override.alarms = list(master.alarms)
        override.has_alarm = master.has_alarm
    override.reminder_id = None  # an occurrence is never "an event Eindr wrote": its series is
    return override


# ---------------------------------------------------------------- conflicts

@dataclass(frozen=True)
class Resolution:
    conflict: bool
    winner: str  # "eindr" | "remote"


def resolve(*, reminder_changed: bool, remote_changed: bool, reminder_modified: datetime | None,
            remote_modified: datetime | None) -> Resolution:
    """Later modification wins, by each source's own timestamp. Both changed since the last
    sync is a conflict (logged with both versions); a missing timestamp loses."""
    if reminder_changed and remote_changed:
        if remote_modified is None:
            return Resolution(True, "eindr")
        if reminder_modified is None:
            return Resolution(True, "remote")
        return Resolution(True, "remote" if remote_modified > reminder_modified else "eindr")
    return Resolution(False, "remote" if remote_changed else "eindr")


def event_summary(ev: EventData) -> dict[str, Any]:
    """A JSON-able version of an event for the conflict log."""
    return {
        "uid": ev.uid,
        "recurrence_id": ev.recurrence_id,
        "summary": ev.summary,
        "description": ev.description,
        "start": _iso(ev.start),
        "local_start": _iso(ev.local_start),
        "tzid": ev.tzid,
        "all_day": ev.all_day,
        "rrule": ev.rrule,
        "exdates": [_iso(x) for x in ev.exdates],
        "alarms": ev.alarms,
        "modified_at": _iso(ev.modified_at),
    }


def all_day_start(day: date) -> datetime:
    return datetime.combine(day, ALL_DAY_LOCAL_TIME)


def backoff_s(failures: int, base: float, cap: float) -> float:
    return min(cap, base * (2 ** max(0, failures - 1)))
