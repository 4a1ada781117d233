"""The spoken-command suite (``eval_commands.json``) and how a turn is scored against it:
used by the voice tests (every command must pass) and by ``bench.py`` (accuracy rates).

A command is judged on what the domain services *stored*, not on what the assistant said:
the reminder's title and due time in the user's zone (computed against the real clock),
its RRULE, the ledger entry's contact/amount/currency/direction, the note's text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

SUITE = Path(__file__).with_name("eval_commands.json")


def load_commands() -> list[dict[str, Any]]:
    return json.loads(SUITE.read_text(encoding="utf-8"))["commands"]


def norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


@dataclass
class Score:
    intent_ok: bool
    slots_ok: bool
    problems: list[str] = field(default_factory=list)


def _due_ok(spec: dict[str, Any], due_at: datetime, tz: str, started: datetime, finished: datetime) -> str | None:
    zone = ZoneInfo(tz)
    local = due_at.astimezone(zone)
    if "in_minutes" in spec:
        lo = started + timedelta(minutes=spec["in_minutes"]) - timedelta(seconds=5)
        hi = finished + timedelta(minutes=spec["in_minutes"], seconds=65)
        return None if lo <= due_at <= hi else f"due {due_at.isoformat()} not {spec['in_minutes']} min after the request"
    want_time = time.fromisoformat(spec["time"]) if "time" in spec else None
    if want_time and (local.hour, local.minute) != (want_time.hour, want_time.minute):
        return f"due local time {local.time()} != {want_time}"
    today: date = started.astimezone(zone).date()
    if "day" in spec:
        want = today + timedelta(days=spec["day"])
        return None if local.date() == want else f"due day {local.date()} != {want}"
    if "weekday" in spec:
        delta = (spec["weekday"] - today.weekday()) % 7 or 7
        want = today + timedelta(days=delta)
        return None if local.date() == want else f"due day {local.date()} != {want}"
    if "first_weekday" in spec:
        ok = local.weekday() == spec["first_weekday"] and timedelta(0) <= local.date() - today <= timedelta(days=7)
        return None if ok else f"first occurrence {local.date()} is not the next weekday {spec['first_weekday']}"
    if spec.get("daily"):
        return None if timedelta(0) <= local.date() - today <= timedelta(days=1) else f"first daily occurrence {local.date()}"
    return None


def score(cmd: dict[str, Any], body: dict[str, Any], stored: dict[str, list[dict[str, Any]]],
          started: datetime, finished: datetime) -> Score:
    """``stored``: {"reminders": [...], "ledger": [...], "notes": [...]} of this command's user."""
    problems: list[str] = []
    intent = (body.get("intent") or {}).get("name")
    intent_ok = intent == cmd["intent"]
    if not intent_ok:
        problems.append(f"intent {intent!r} != {cmd['intent']!r} (transcript {body.get('transcript')!r})")
    tz = cmd.get("tz", "Europe/Amsterdam")
    if "due" in cmd or "title" in cmd:
        items = stored.get("reminders", [])
        if len(items) != 1:
            problems.append(f"{len(items)} reminders stored (transcript {body.get('transcript')!r})")
        else:
            r = items[0]
            if "title" in cmd and norm(r["title"]) not in {norm(t) for t in cmd["title"]}:
                problems.append(f"title {r['title']!r} not in {cmd['title']}")
            if cmd.get("rrule") and not (r.get("rrule") or "").startswith(cmd["rrule"]):
                problems.append(f"rrule {r.get('rrule')!r} != {cmd['rrule']!r}")
            if not cmd.get("rrule") and r.get("rrule"):
                problems.append(f"unexpected rrule {r['rrule']!r}")
            if "due" in cmd:
                why = _due_ok(cmd["due"], datetime.fromisoformat(r["due_at"]), tz, started, finished)
                if why:
                    problems.append(why)
    if "ledger" in cmd:
        want = cmd["ledger"]
        items = stored.get("ledger", [])
        if len(items) != 1:
            problems.append(f"{len(items)} ledger entries stored (transcript {body.get('transcript')!r}, slots {body.get('slots')})")
        else:
            e = items[0]
            name = (e.get("counterparty") or {}).get("name")
            if name not in want["name"]:
                problems.append(f"contact {name!r} not in {want['name']}")
            if Decimal(e["amount"]) != Decimal(want["amount"]) or e["currency"] != want["currency"]:
                problems.append(f"amount {e['amount']} {e['currency']} != {want['amount']} {want['currency']}")
            if e["direction"] != want["direction"]:
                problems.append(f"direction {e['direction']} != {want['direction']}")
    if "note" in cmd:
        items = stored.get("notes", [])
        if len(items) != 1:
            problems.append(f"{len(items)} notes stored (transcript {body.get('transcript')!r})")
        else:
            text = norm((items[0].get("text") or "") + " " + (items[0].get("title") or ""))
            for word in cmd["note"]:
                if norm(word) not in text.replace("wi fi", "wifi"):
                    problems.append(f"note {text!r} lacks {word!r}")
    if cmd.get("not_supported"):
        statuses = [a["status"] for a in body.get("actions", [])]
        if intent_ok and statuses != ["not_supported"]:
            problems.append(f"actions {statuses} != ['not_supported']")
    if "statuses" in cmd:
        # Queries and answers that change nothing are judged on what the assistant did
        # (a fresh user has no friends: sharing must say so, not pretend).
        statuses = [a["status"] for a in body.get("actions", [])]
        if intent_ok and statuses != cmd["statuses"]:
            problems.append(f"actions {statuses} != {cmd['statuses']}")
    # Queries and chat change nothing.
    if not any(k in cmd for k in ("due", "title", "ledger", "note")) and any(
        stored.get(k) for k in ("reminders", "ledger", "notes")
    ):
        problems.append("a query stored something")
    slots_ok = not [p for p in problems if not p.startswith("intent ")]
    return Score(intent_ok=intent_ok, slots_ok=slots_ok, problems=problems)
