"""Pure reminder rules: zones, recurrence (RFC 5545 RRULE through python-dateutil), DST,
alarms (lead offsets), the next fire time, quiet hours. No I/O here.

Time model
----------
A reminder is anchored at a *wall-clock* date-time (``anchor_local``, naive) in a zone:

* ``floating`` – created from ``local_due`` without an explicit ``timezone``: the zone is
  the user's preference and follows it when the user changes timezone (re-anchoring);
* ``zoned``    – an explicit IANA ``timezone`` was given: wall clock in that zone, forever;
* ``fixed``    – created from ``due_at`` with a UTC offset and no ``timezone``: an absolute
  instant; a recurrence steps in that fixed offset (no DST).

Recurrences are expanded on the wall clock of the zone (dateutil with an aware DTSTART does
this), so "every day at 08:00" in America/New_York is 08:00 local on both sides of a DST
change. Local times that do not exist or exist twice follow RFC 5545 §3.3.5 and Python's
``fold=0``:

* a non-existent time (02:30 on the spring-forward day) is read with the offset in force
  *before* the gap, i.e. it fires the gap's length later on the new clock (03:30 EDT);
* an ambiguous time (01:30 on the fall-back day) is the *first* of the two (01:30 EDT).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from dateutil.rrule import rrule, rrulestr
from eindr_common import sharing

MAX_RRULE_LEN = 1000
MAX_ALARMS = 10
MAX_LEAD_S = 28 * 86400
# How far ahead we look for the next occurrence of rules without COUNT before we call the
# rule exhausted. Bounded so that an impossible rule (BYMONTH=2;BYMONTHDAY=30) cannot spin.
HORIZON = {
    "YEARLY": timedelta(days=366 * 100),
    "MONTHLY": timedelta(days=366 * 50),
    "WEEKLY": timedelta(days=366 * 20),
    "DAILY": timedelta(days=366 * 10),
    "HOURLY": timedelta(days=366 * 2),
    "MINUTELY": timedelta(days=14),
}
MAX_SCAN = 5000


class DomainError(ValueError):
    """A rule broken by the input; ``field`` names the offending request field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# ---------------------------------------------------------------- zones

_FIXED = re.compile(r"^(?:UTC)?([+-])(\d{2}):?(\d{2})$")
_ZONES: set[str] | None = None


def resolve_zone(name: str, field: str = "timezone") -> tzinfo:
    """An IANA zone name, or a fixed offset written ``+02:00`` (used by ``fixed`` reminders)."""
    global _ZONES
    m = _FIXED.match(name)
    if m:
        sign, hh, mm = m.groups()
        minutes = int(hh) * 60 + int(mm)
        if int(mm) >= 60 or minutes > 18 * 60:
            raise DomainError(field, f"UTC offset out of range: {name}")
        return timezone(timedelta(minutes=minutes if sign == "+" else -minutes))
    if _ZONES is None:
        _ZONES = available_timezones()
    if name not in _ZONES and name != "UTC":
        raise DomainError(field, "unknown timezone; use an IANA name such as Europe/Amsterdam")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise DomainError(field, "unknown timezone; use an IANA name such as Europe/Amsterdam") from exc


def offset_name(dt: datetime) -> str:
    off = dt.utcoffset() or timedelta(0)
    total = int(off.total_seconds()) // 60
    sign = "+" if total >= 0 else "-"
    total = abs(total)
    return f"{sign}{total // 60:02d}:{total % 60:02d}"


def localize(naive: datetime, zone: tzinfo) -> datetime:
    """Wall clock in ``zone`` -> UTC instant, with the documented gap/overlap rule (fold=0)."""
    return naive.replace(tzinfo=zone, fold=0).astimezone(UTC)


def to_local(instant: datetime, zone: tzinfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


# ---------------------------------------------------------------- alarms (lead offsets)

_DUR = re.compile(r"^([+-])?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_ISO_DUR = re.compile(r"^([+-])?P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


def parse_offset(value: int | str, field: str) -> int:
    """A lead offset in seconds (<= 0). Integers are minutes; strings are ``-10m``, ``-1d``,
    ``-1h30m``, ``0`` or ISO 8601 (``-PT10M``, ``-P1D``)."""
    if isinstance(value, bool):
        raise DomainError(field, "an offset is minutes (integer) or a duration such as -10m")
    if isinstance(value, int):
        seconds = value * 60
    else:
        text = value.strip()
        if text.lstrip("+-") == "0":
            return 0
        match = _DUR.match(text.lower())
        if match is None or not any(match.groups()[1:]):
            match = _ISO_DUR.match(text.upper())
        if match is None or not any(match.groups()[1:]):
            raise DomainError(field, "an offset is minutes (integer) or a duration such as -10m, -1d, -PT10M")
        sign, w, d, h, mi, s = match.groups()
        seconds = int(w or 0) * 7 * 86400 + int(d or 0) * 86400 + int(h or 0) * 3600 + int(mi or 0) * 60 + int(s or 0)
        if sign == "-":
            seconds = -seconds
    if seconds > 0:
        raise DomainError(field, "a lead offset must not be after the due time (use 0 or a negative offset)")
    if seconds < -MAX_LEAD_S:
        raise DomainError(field, "a lead offset may be at most 28 days before the due time")
    return seconds


def format_offset(seconds: int) -> str:
    if seconds == 0:
        return "0"
    sign = "-" if seconds < 0 else "+"
    s = abs(seconds)
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if s >= size:
            out += f"{s // size}{unit}"
            s %= size
    return sign + out


# ---------------------------------------------------------------- RRULE

_KEYS = {
    "FREQ",
    "INTERVAL",
    "COUNT",
    "UNTIL",
    "BYSECOND",
    "BYMINUTE",
    "BYHOUR",
    "BYDAY",
    "BYMONTHDAY",
    "BYYEARDAY",
    "BYWEEKNO",
    "BYMONTH",
    "BYSETPOS",
    "WKST",
}
_FREQS = {"YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY"}
_RANGES = {
    "BYSECOND": (0, 59, False),
    "BYMINUTE": (0, 59, False),
    "BYHOUR": (0, 23, False),
    "BYMONTHDAY": (1, 31, True),
    "BYYEARDAY": (1, 366, True),
    "BYWEEKNO": (1, 53, True),
    "BYMONTH": (1, 12, False),
    "BYSETPOS": (1, 366, True),
}
_BYDAY = re.compile(r"^([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$")
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_WEEKDAYS = {"MO", "TU", "WE", "TH", "FR", "SA", "SU"}


def _int(value: str, key: str) -> int:
    if not re.fullmatch(r"[+-]?\d{1,6}", value):
        raise DomainError("rrule", f"{key} must be an integer")
    return int(value)


def normalize_rrule(rule: str, zone: tzinfo) -> tuple[str, str]:
    """Validate an RRULE and return (stored text, text for dateutil with UNTIL in UTC).

    Out-of-range values, unknown parts, SECONDLY, INTERVAL=0, COUNT with UNTIL, DTSTART
    inside the rule: each a ``DomainError`` on ``rrule``."""
    text = rule.strip()
    if text.upper().startswith("RRULE:"):
        text = text[6:]
    if not text or len(text) > MAX_RRULE_LEN:
        raise DomainError("rrule", f"an RRULE is 1 to {MAX_RRULE_LEN} characters")
    if "\n" in text or "\r" in text:
        raise DomainError("rrule", "one RRULE line only (DTSTART and EXDATE are fields of their own)")
    parts: dict[str, str] = {}
    for chunk in text.split(";"):
        if "=" not in chunk:
            raise DomainError("rrule", f"unparseable RRULE part {chunk[:40]!r}; expected KEY=VALUE")
        key, _, value = chunk.partition("=")
        key = key.strip().upper()
        value = value.strip().upper()
        if key not in _KEYS:
            raise DomainError("rrule", f"unsupported RRULE part {key[:20]}")
        if key in parts:
            raise DomainError("rrule", f"{key} appears twice")
        if not value:
            raise DomainError("rrule", f"{key} has no value")
        parts[key] = value
    freq = parts.get("FREQ")
    if freq is None:
        raise DomainError("rrule", "FREQ is required")
    if freq not in _FREQS:
        raise DomainError("rrule", f"FREQ must be one of {', '.join(sorted(_FREQS))}")
    if "COUNT" in parts and "UNTIL" in parts:
        raise DomainError("rrule", "COUNT and UNTIL must not both be given (RFC 5545)")
    if "INTERVAL" in parts and not 1 <= _int(parts["INTERVAL"], "INTERVAL") <= 1000:
        raise DomainError("rrule", "INTERVAL must be between 1 and 1000")
    if "COUNT" in parts and not 1 <= _int(parts["COUNT"], "COUNT") <= 10000:
        raise DomainError("rrule", "COUNT must be between 1 and 10000")
    for key, (lo, hi, signed) in _RANGES.items():
        if key not in parts:
            continue
        for item in parts[key].split(","):
            n = _int(item, key)
            if not (lo <= (abs(n) if signed else n) <= hi) or (signed and n == 0 and lo > 0):
                raise DomainError("rrule", f"{key} value {n} is out of range")
    if "BYDAY" in parts:
        for item in parts["BYDAY"].split(","):
            m = _BYDAY.match(item)
            if not m:
                raise DomainError("rrule", f"BYDAY value {item[:10]!r} is not a weekday such as MO or -1FR")
            if m.group(1) is not None and not 1 <= abs(int(m.group(1))) <= 53:
                raise DomainError("rrule", f"BYDAY ordinal in {item} is out of range")
    if "BYMONTHDAY" in parts:
        # dateutil scans to year 9999 looking for an impossible date (Feb 30): refuse it here.
        months = [int(m) for m in parts["BYMONTH"].split(",")] if "BYMONTH" in parts else list(range(1, 13))
        days = [int(d) for d in parts["BYMONTHDAY"].split(",")]
        longest = max(_MONTH_DAYS[m - 1] for m in months)
        if all(abs(d) > longest for d in days):
            raise DomainError("rrule", "BYMONTHDAY never falls in the months of this rule")
    if "WKST" in parts and parts["WKST"] not in _WEEKDAYS:
        raise DomainError("rrule", "WKST must be a weekday")
    stored = ";".join(f"{k}={v}" for k, v in parts.items())
    if "UNTIL" in parts:
        parts["UNTIL"] = _until_utc(parts["UNTIL"], zone)
    return stored, ";".join(f"{k}={v}" for k, v in parts.items())


def _until_utc(value: str, zone: tzinfo) -> str:
    try:
        if value.endswith("Z"):
            datetime.strptime(value, "%Y%m%dT%H%M%SZ")
            return value
        if "T" in value:
            local = datetime.strptime(value, "%Y%m%dT%H%M%S")
        else:  # a date: inclusive of that whole local day
            local = datetime.combine(datetime.strptime(value, "%Y%m%d").date(), time(23, 59, 59))
    except ValueError as exc:
        raise DomainError("rrule", "UNTIL must be YYYYMMDD, YYYYMMDDTHHMMSS or YYYYMMDDTHHMMSSZ") from exc
    return localize(local, zone).strftime("%Y%m%dT%H%M%SZ")


# ---------------------------------------------------------------- the schedule


@dataclass(frozen=True)
class Schedule:
    anchor_local: datetime  # naive wall clock
    zone: tzinfo
    rrule: str | None = None  # stored (validated) text
    exdates: tuple[datetime, ...] = ()  # naive wall clocks
    alarms: tuple[int, ...] = (0,)  # seconds, <= 0
    _rule: rrule | None = field(default=None, compare=False, repr=False)

    @classmethod
    def build(
        cls,
        anchor_local: datetime,
        zone: tzinfo,
        rrule_text: str | None = None,
        exdates: tuple[datetime, ...] | list[datetime] = (),
        alarms: tuple[int, ...] | list[int] = (0,),
    ) -> Schedule:
        rule = None
        if rrule_text:
            _, for_dateutil = normalize_rrule(rrule_text, zone)
            try:
                rule = rrulestr(for_dateutil, dtstart=anchor_local.replace(tzinfo=zone, fold=0))
            except (ValueError, TypeError, OverflowError) as exc:
                raise DomainError("rrule", f"unparseable RRULE: {str(exc)[:120]}") from exc
        return cls(
            anchor_local.replace(tzinfo=None, microsecond=0),
            zone,
            rrule_text,
            tuple(exdates),
            tuple(sorted(set(alarms or (0,)))),
            rule,
        )

    @property
    def recurring(self) -> bool:
        return self._rule is not None

    @property
    def first_utc(self) -> datetime:
        return localize(self.anchor_local, self.zone)

    def _horizon(self) -> timedelta:
        return (
            HORIZON.get(self.rrule.upper().split("FREQ=")[1].split(";")[0], HORIZON["DAILY"])
            if self.rrule
            else timedelta(0)
        )

    def occurrences(self, start: datetime, inclusive: bool = True, limit: int = 10, end: datetime | None = None):
        """UTC occurrences at or after ``start`` (strictly after unless ``inclusive``), EXDATEs skipped."""
        if self._rule is None:
            first = self.first_utc
            if (first > start or (inclusive and first == start)) and (end is None or first <= end):
                yield first
            return
        rule = self._rule
        bound = start + self._horizon()
        if end is not None:
            bound = min(bound, end)
        if rule._count is None:  # bounded scan: impossible rules must not spin
            until = rule._until
            rule = rule.replace(until=min(until, bound) if until else bound)
        excluded = set(self.exdates)
        local_start = start.astimezone(self.zone)
        produced = scanned = 0
        for occ in rule.xafter(local_start, inc=inclusive):
            scanned += 1
            if scanned > MAX_SCAN or produced >= limit:
                return
            if occ.replace(tzinfo=None) in excluded:
                continue
            utc = occ.astimezone(UTC)
            if utc < start or (not inclusive and utc == start):
                continue
            if end is not None and utc > end:
                return
            produced += 1
            yield utc

    def next_fire(
        self, *, after: tuple[datetime, datetime] | None = None, not_before: datetime | None = None
    ) -> tuple[datetime, int, datetime] | None:
        """The next (occurrence, offset_s, fire_at) with fire_at >= ``not_before`` and
        (fire_at, occurrence) strictly after ``after``; ``None`` when the series is over."""
        bounds = [b for b in (after[0] if after else None, not_before) if b is not None]
        lower = max(bounds) if bounds else datetime.min.replace(tzinfo=UTC)
        min_off = self.alarms[0]
        best: tuple[datetime, datetime, int] | None = None
        # Any pair firing at/after `lower` has occurrence >= lower (offsets are <= 0).
        for occ in self.occurrences(lower, inclusive=True, limit=MAX_SCAN):
            if best is not None and occ + timedelta(seconds=min_off) > best[0]:
                break
            for off in self.alarms:
                fire = occ + timedelta(seconds=off)
                if not_before is not None and fire < not_before:
                    continue
                if after is not None and (fire, occ) <= after:
                    continue
                if best is None or (fire, occ) < (best[0], best[1]):
                    best = (fire, occ, off)
        if best is None:
            return None
        return best[1], best[2], best[0]

    def validate_fires(self) -> None:
        """At least one occurrence exists at all (within the bounded horizon)."""
        if (
            self._rule is not None
            and next(self.occurrences(self.first_utc - timedelta(seconds=1), limit=1), None) is None
        ):
            raise DomainError("rrule", "this RRULE produces no occurrence")


# ---------------------------------------------------------------- quiet hours


def parse_hhmm(value: str) -> time:
    hh, mm = value.split(":")
    return time(int(hh), int(mm))


def quiet_hold_until(fire_at: datetime, zone: tzinfo, start: time, end: time) -> datetime | None:
    """If ``fire_at`` falls in the quiet period [start, end) of the user's local day (which may
    wrap midnight), the instant the quiet period ends; else ``None``."""
    if start == end:
        return None
    local = fire_at.astimezone(zone)
    t = local.time().replace(tzinfo=None)
    if start < end:
        quiet = start <= t < end
        end_day: date = local.date()
    else:
        quiet = t >= start or t < end
        end_day = local.date() + timedelta(days=1) if t >= start else local.date()
    if not quiet:
        return None
    held = localize(datetime.combine(end_day, end), zone)
    return held if held > fire_at else None


# ---------------------------------------------------------------- free-text search keys

# The list/cancel filter ``q`` means: lower(q) is a substring of lower(title), lower(notes)
# or lower(phrase) (PostgreSQL ILIKE with the wildcards escaped). The GIN index on
# reminders.reminder_search serves it with trigram keys: a text contains every 3-character
# substring of anything it contains, so "the field's keys include all of q's keys" is a
# necessary condition, and the ILIKE in the query stays the exact test. For that to hold
# the keys must be computed through a character mapping that gives equal results whenever
# PostgreSQL's lower() does: ASCII letters are lower-cased; the three non-ASCII letters
# that a libc lower() can turn into, or make of, an ASCII letter (U+0130 İ -> i, U+212A
# KELVIN SIGN -> k, and U+0131 ı, what a Turkish locale makes of I) fold to that letter;
# every other non-ASCII character folds to one placeholder. That over-matches (é and ü
# share a key; the ILIKE sorts it out) but never misses a match, under libc or C collations
# (an ICU collation's lower() can change a text's length, which this does not model).
# pg_trgm would be the library for this, but it is a contrib extension and the PostgreSQL
# the tests run on (pgserver) ships without contrib. Migration 0002 holds the same mapping
# in SQL (reminders.search_grams, for backfills); a test keeps the two equal.
_FOLD_ASCII = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ\u0130\u0131\u212a", "abcdefghijklmnopqrstuvwxyziik")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
SEARCH_PLACEHOLDER = "\x1a"


def search_grams(*texts: str | None) -> list[str]:
    """The search keys of a reminder's texts (title, notes, phrase), or of a query: the
    distinct trigrams of each text after folding, sorted."""
    grams: set[str] = set()
    for text in texts:
        if text:
            folded = _NON_ASCII.sub(SEARCH_PLACEHOLDER, text.translate(_FOLD_ASCII))
            grams.update(folded[i : i + 3] for i in range(len(folded) - 2))
    return sorted(grams)


# ---------------------------------------------------------------- who may do what with a reminder
#
# A caller's access to a reminder is "owner" (theirs) or the access of a friend's share of
# it ("view" or "edit", from the friends service). A share grants reading (get, list,
# occurrences); "edit" adds PATCH (texts, time, alarms, priority, tags). Everything that
# ends or steers the owner's reminder (delete, cancel, snooze, complete, reopen, refuse) and
# sharing it further stay the owner's.

ACCESS_LEVELS = sharing.ACCESS_LEVELS
ACTIONS = ("read", "edit", "delete", "cancel", "snooze", "complete", "reopen", "refuse")
permits = sharing.SharedAccess(ACTIONS).permits
