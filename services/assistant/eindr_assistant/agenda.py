"""calendar_query: "what's on my calendar tomorrow" → a spoken summary of that day (or week).

The calendar service keeps the user's Google/CalDAV calendars and their reminders in step:
events with an alarm (or all events, by the connection's ``import_mode``) come in as
reminders with ``source=calendar``, and Eindr's reminders go out as events. It does not
serve events itself, so the agenda of a day is the user's reminders that occur in it, read
as the user from the reminders service: one-offs by their due time, recurring ones
expanded from their RRULE (a daily stand-up whose next occurrence is today also happens
tomorrow). The calendar service says which calendars are connected and whether their sync
is healthy, so the reply says when it may be out of date or comes from reminders alone.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

from . import replies

if TYPE_CHECKING:
    from .pipeline import Turn

UPCOMING_DAYS = 7
MAX_OCCURRENCES_PER_REMINDER = 50  # a minutely rule over a week stays a short list
PAGE = 200  # the reminders service's largest page
SINGLE_DAY_LABELS = ("today", "tomorrow", "after_tomorrow", "weekday", "date")


def window(turn: Turn) -> tuple[datetime, datetime, str]:
    """The local span asked about: the day(s) the slots name, else the next 7 days from now."""
    zone = ZoneInfo(turn.timezone)
    if turn.slots.get("due_from"):
        start = datetime.fromisoformat(turn.slots["due_from"]).astimezone(zone)
        end = datetime.fromisoformat(turn.slots["due_to"]).astimezone(zone)
        return start, end, turn.slots.get("day") or "date"
    start = turn.now.astimezone(zone)
    return start, start + timedelta(days=UPCOMING_DAYS), "upcoming"


async def calendar_query(turn: Turn) -> None:
    start, end, label = window(turn)
    domain, me, dl = turn.deps.domain, turn.principal, turn.deadline
    # The user's own agenda: reminders friends shared with them are not on their calendar.
    connections, in_range, series = await asyncio.gather(
        domain.call("calendar", "GET", "/v1/calendar/connections", me, dl, params={"limit": 50}),
        domain.call("reminders", "GET", "/v1/reminders", me, dl,
                    params={"due_from": start.isoformat(), "due_to": end.isoformat(), "limit": PAGE, "scope": "own"}),
        # Recurring reminders whose next occurrence is before the window may still occur in it.
        domain.call("reminders", "GET", "/v1/reminders", me, dl,
                    params={"status": "scheduled", "due_to": end.isoformat(), "limit": PAGE, "scope": "own"}),
    )
    conns = list((connections or {}).get("items", []))
    events = occurrences(list((in_range or {}).get("items", [])) + list((series or {}).get("items", [])), start, end)
    zone = ZoneInfo(turn.timezone)
    today = turn.now.astimezone(zone).date()
    lang = turn.reply_language

    # A stale calendar is said first (the reply is capped, and what it may be missing
    # matters more than the sixth item); "no calendar connected" is said after the list.
    warning = info = ""
    if not conns:
        info = replies.render("calendar_not_connected", lang)
    for c in conns:
        if c.get("status") in ("needs_reauth", "failed"):
            name = c.get("display_name") or {"google": "Google", "caldav": "CalDAV"}.get(c.get("provider"), "")
            warning = replies.render("calendar_needs_reauth" if c["status"] == "needs_reauth" else "calendar_failing", lang, calendar=name)
            break
    notes = [n for n in (warning, info) if n]

    single_day = label in SINGLE_DAY_LABELS
    rng = _range_words(label, start, today, lang)
    shown_max = 3 if notes else 5
    parts = []
    for ev in events[:shown_max]:
        local = ev["at"].astimezone(zone)
        if single_day:
            parts.append(replies.render("item_at", lang, title=ev["title"], time=replies.time_words(local, lang)))
        else:
            parts.append(replies.render("item_when", lang, title=ev["title"], when=replies.when_words(local, today, lang)))
    items = "; ".join(parts)
    if len(events) > shown_max:
        items = replies.render("calendar_more", lang, items=items, n=len(events) - shown_max)
    if not events:
        summary = replies.render("calendar_empty", lang, range=rng)
    else:
        summary = replies.render("calendar_list_one" if len(events) == 1 else "calendar_list", lang, n=len(events), range=rng, items=items)

    turn.act("calendar.query", "calendar", "done", ids=sorted({ev["id"] for ev in events}), data={
        "count": len(events), "from": start.isoformat(), "to": end.isoformat(),
        "from_calendar": sum(1 for ev in events if ev["source"] == "calendar"),
        "calendars": [{"id": str(c.get("id")), "provider": c.get("provider"), "status": c.get("status")} for c in conns],
        "events": [{"id": ev["id"], "title": ev["title"], "at": ev["at"].isoformat(), "source": ev["source"]} for ev in events[:20]],
    })
    turn.reply_key = None
    turn.reply = " ".join(n for n in (warning, summary, info) if n)


def _range_words(label: str, start: datetime, today, lang: str) -> str:
    if label in SINGLE_DAY_LABELS:
        return replies.render("range_day", lang, day=replies.day_word(start.date(), today, lang))
    return replies.render({"week": "range_week", "next_week": "range_next_week"}.get(label, "range_upcoming"), lang)


def occurrences(reminders: list[dict[str, Any]], start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Every occurrence in [start, end) of these reminders (deduplicated by id), by time."""
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for it in reminders:
        rid = str(it.get("id"))
        if rid in seen or it.get("status") == "cancelled":
            continue
        seen.add(rid)
        for at in _times(it, start, end):
            out.append({"id": rid, "title": it.get("title") or "", "at": at, "source": it.get("source") or ""})
    out.sort(key=lambda ev: (ev["at"], ev["title"]))
    return out


def _times(it: dict[str, Any], start: datetime, end: datetime) -> list[datetime]:
    due = datetime.fromisoformat(it["due_at"]) if it.get("due_at") else None
    if not it.get("rrule") or it.get("status") != "scheduled":
        return [due] if due is not None and start <= due < end else []
    zone = ZoneInfo(it.get("timezone") or "UTC")
    anchor = datetime.fromisoformat(it["local_due"])
    anchor = anchor.replace(tzinfo=zone) if anchor.tzinfo is None else anchor.astimezone(zone)
    try:
        rule = rrulestr(it["rrule"], dtstart=anchor)
    except (ValueError, TypeError):
        # A rule dateutil cannot read here (the reminders service accepted it): its next
        # occurrence is still right.
        return [due] if due is not None and start <= due < end else []
    skip = {_wall(x, zone) for x in it.get("exdates") or []}
    times = []
    for at in rule.xafter(start.astimezone(zone), count=MAX_OCCURRENCES_PER_REMINDER, inc=True):
        if at >= end:
            break
        if at.replace(tzinfo=None) not in skip:
            times.append(at)
    return times


def _wall(value: str, zone: ZoneInfo) -> datetime:
    dt = datetime.fromisoformat(value)
    return dt.astimezone(zone).replace(tzinfo=None) if dt.tzinfo else dt
