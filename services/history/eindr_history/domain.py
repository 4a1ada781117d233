"""Pure rules of the history service: what an interaction may hold, output neutralisation,
rank fusion, and habit detection. No I/O."""

from __future__ import annotations

import html
import json
import statistics
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

MAX_TEXT = 4000
MAX_QUERY = 500
MAX_JSON_BYTES = 16_384
RRF_K = 60
OUTCOMES = ("success", "partial", "failed", "cancelled", "clarification")
REMINDER_INTENT = "create_reminder"
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
DAY_NAMES = ("Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays", "Saturdays", "Sundays")


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text (no lone surrogates)"
    for ch in value:
        if ch == "\x00":
            return "must not contain NUL bytes"
        if unicodedata.category(ch) == "Cc" and not (multiline and ch in "\n\t\r"):
            return "must not contain control characters"
    return None


def json_problem(value: Any) -> str | None:
    """JSON fields (slots, actions, latencies): bounded, and no NUL anywhere (Postgres jsonb
    refuses \\u0000 in strings)."""
    try:
        encoded = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return "must be JSON"
    if len(encoded.encode("utf-8", "surrogatepass")) > MAX_JSON_BYTES:
        return f"at most {MAX_JSON_BYTES} bytes of JSON"
    if "\\u0000" in json.dumps(value) or "\x00" in encoded:
        return "must not contain NUL bytes"
    try:
        encoded.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text (no lone surrogates)"
    return None


# Same rule as the notes service (INTEGRATION.md "Plain text on output"): HTML-escape, and
# square brackets as character references, so nothing renders as HTML or a Markdown link.
_NEUTRAL = str.maketrans({"[": "&#91;", "]": "&#93;"})


def neutralise(value: str | None) -> str | None:
    return None if value is None else html.escape(value, quote=True).translate(_NEUTRAL)


def neutralise_json(value: Any) -> Any:
    if isinstance(value, str):
        return neutralise(value)
    if isinstance(value, list):
        return [neutralise_json(v) for v in value]
    if isinstance(value, dict):
        return {neutralise(str(k)): neutralise_json(v) for k, v in value.items()}
    return value


def rrf(semantic: Sequence[str], fulltext: Sequence[str], *, k: int = RRF_K, limit: int = 20) -> list[tuple[str, float, int | None, int | None]]:
    """Reciprocal rank fusion: (id, score, semantic rank, full-text rank), best first."""
    sem = {d: r for r, d in reversed(list(enumerate(semantic, 1)))}
    fts = {d: r for r, d in reversed(list(enumerate(fulltext, 1)))}
    order = list(dict.fromkeys(list(semantic) + list(fulltext)))
    score = {d: (1 / (k + sem[d]) if d in sem else 0.0) + (1 / (k + fts[d]) if d in fts else 0.0) for d in order}
    pos = {d: i for i, d in enumerate(order)}
    ranked = sorted(order, key=lambda d: (-score[d], pos[d]))[:limit]
    return [(d, score[d], sem.get(d), fts.get(d)) for d in ranked]


def query_problem(q: str) -> str | None:
    if not q.strip():
        return "must not be empty"
    if len(q) > MAX_QUERY:
        return f"at most {MAX_QUERY} characters"
    return text_problem(q)


# --- habits -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReminderEvent:
    """One reminder the user created by hand (from a create_reminder interaction)."""

    title: str
    local: datetime  # when it was due, on the user's wall clock
    timezone: str | None


@dataclass
class Habit:
    title: str
    weekday: int  # 0 = Monday
    minute_of_day: int
    occurrences: int
    timezone: str | None
    centroid: np.ndarray = field(repr=False)

    @property
    def rrule(self) -> str:
        return habit_rrule(self.weekday, self.minute_of_day)

    @property
    def text(self) -> str:
        return f"Make '{self.title}' a weekly reminder on {DAY_NAMES[self.weekday]} at {self.minute_of_day // 60:02d}:{self.minute_of_day % 60:02d}?"


def habit_rrule(weekday: int, minute_of_day: int) -> str:
    return f"FREQ=WEEKLY;BYDAY={WEEKDAYS[weekday]};BYHOUR={minute_of_day // 60};BYMINUTE={minute_of_day % 60}"


def reminder_event(slots: Any, occurred_at: datetime) -> ReminderEvent | None:
    """The hand-made, one-off reminder an interaction created, or None.

    Slots contract (from the assistant): ``title`` (text), ``due_at`` (RFC 3339 with offset)
    or ``local_due`` (wall clock) + ``timezone`` (IANA), ``rrule`` (absent for a one-off)."""
    if not isinstance(slots, dict):
        return None
    title = slots.get("title")
    if not isinstance(title, str) or not title.strip() or slots.get("rrule"):
        return None
    tz_name = slots.get("timezone") if isinstance(slots.get("timezone"), str) else None
    zone = None
    if tz_name:
        try:
            zone = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            tz_name = None
    local: datetime | None = None
    for key in ("due_at", "local_due"):
        raw = slots.get(key)
        if isinstance(raw, str):
            try:
                local = datetime.fromisoformat(raw)
            except ValueError:
                continue
            break
    if local is None:
        return None
    if local.tzinfo is not None and zone is not None:
        local = local.astimezone(zone)
    return ReminderEvent(title=title.strip(), local=local.replace(tzinfo=None), timezone=tz_name)


def _minute(dt: datetime) -> int:
    return dt.hour * 60 + dt.minute


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return float(a @ b) / (na * nb) if na and nb else 0.0


def detect_habits(
    events: Sequence[ReminderEvent],
    vectors: Sequence[np.ndarray],
    *,
    similarity: float = 0.75,
    window_min: int = 60,
    min_occurrences: int = 3,
    known: Sequence[tuple[int, int, np.ndarray]] = (),
) -> list[Habit]:
    """Reminders of the same kind (title embeddings with cosine ≥ ``similarity``) due on the
    same weekday within ``window_min`` minutes of each other, on at least
    ``min_occurrences`` different dates, form a habit. ``known`` (weekday, minute, vector)
    are suggestions made before (pending, accepted or dismissed): never suggested again."""
    clusters: list[dict[str, Any]] = []
    order = sorted(range(len(events)), key=lambda i: events[i].local)
    for i in order:
        ev, vec = events[i], np.asarray(vectors[i], dtype=np.float32)
        wd, minute = ev.local.weekday(), _minute(ev.local)
        for c in clusters:
            if c["weekday"] == wd and abs(minute - statistics.median(c["minutes"])) <= window_min and _cos(vec, c["sum"]) >= similarity:
                c["members"].append(i)
                c["minutes"].append(minute)
                c["sum"] = c["sum"] + vec
                break
        else:
            clusters.append({"weekday": wd, "minutes": [minute], "members": [i], "sum": vec.copy()})
    habits: list[Habit] = []
    for c in clusters:
        dates: set[date] = {events[i].local.date() for i in c["members"]}
        if len(dates) < min_occurrences:
            continue
        minute = int(round(statistics.median(c["minutes"]) / 15.0) * 15) % 1440
        centroid = c["sum"] / max(float(np.linalg.norm(c["sum"])), 1e-9)
        if any(kw == c["weekday"] and abs(km - minute) <= window_min and _cos(centroid, kv) >= similarity for kw, km, kv in known):
            continue
        titles = Counter(events[i].title.casefold() for i in c["members"])
        top = titles.most_common(1)[0][0]
        latest = max((i for i in c["members"] if events[i].title.casefold() == top), key=lambda i: events[i].local)
        zones = Counter(events[i].timezone for i in c["members"] if events[i].timezone)
        habits.append(Habit(
            title=events[latest].title,
            weekday=c["weekday"],
            minute_of_day=minute,
            occurrences=len(dates),
            timezone=zones.most_common(1)[0][0] if zones else None,
            centroid=centroid,
        ))
    return habits


def next_local(weekday: int, minute_of_day: int, now_local: datetime) -> datetime:
    """The next wall-clock date-time on ``weekday`` at ``minute_of_day`` after ``now_local``."""
    base = now_local.replace(hour=minute_of_day // 60, minute=minute_of_day % 60, second=0, microsecond=0, tzinfo=None)
    days = (weekday - base.weekday()) % 7
    candidate = base + timedelta(days=days)
    if candidate <= now_local.replace(tzinfo=None):
        candidate += timedelta(days=7)
    return candidate
