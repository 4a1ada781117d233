"""Use cases of the reminders service: each runs in one transaction and applies the domain
rules; the API and the worker call these, never the repository directly."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from eindr_common.errors import BadRequest, Conflict, Forbidden, NotFound, ValidationFailed
from eindr_common.identity import Principal
from pydantic import TypeAdapter, ValidationError

from . import repository as repo
from .clients import FriendsClient, Preferences, SharedReminder, UsersClient
from .domain import (
    DomainError,
    Schedule,
    format_offset,
    localize,
    offset_name,
    parse_hhmm,
    parse_offset,
    permits,
    quiet_hold_until,
    resolve_zone,
    to_local,
)
from .schemas import CancelFilter, ReminderCreate, ReminderCreateFor, ReminderPatch, SnoozeBody

log = logging.getLogger("eindr.reminders.service")

MAX_PAST = timedelta(minutes=5)
TIME_FIELDS = {"due_at", "local_due", "timezone", "rrule", "exdates", "alarms"}


def utcnow() -> datetime:
    return datetime.now(UTC)


def _invalid(errors: list[dict[str, str]]) -> ValidationFailed:
    fields = ", ".join(sorted({e["field"] for e in errors}))
    return ValidationFailed(f"Invalid value for: {fields}", errors=errors)


# ---------------------------------------------------------------- composing a reminder row


@dataclass
class TimeSpec:
    due_at: datetime | None
    local_due: datetime | None
    timezone: str | None
    rrule: str | None
    exdates: list[datetime]
    alarms: list[int | str] | None


def compose_schedule(
    spec: TimeSpec, *, default_zone: str | None, now: datetime, prefix: str = "", check_past: bool = True
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Validate the time fields and compute the first fire. Returns (columns, errors)."""
    errors: list[dict[str, str]] = []

    def err(field: str, message: str) -> None:
        errors.append({"field": prefix + field, "message": message})

    if spec.due_at is not None and spec.local_due is not None:
        err("local_due", "give due_at or local_due, not both")
        return {}, errors
    if spec.due_at is None and spec.local_due is None:
        err("due_at", "due_at (with offset) or local_due (wall clock) is required")
        return {}, errors
    zone = None
    if spec.timezone is not None:
        try:
            zone = resolve_zone(spec.timezone)
        except DomainError as exc:
            err("timezone", exc.message)
            return {}, errors
    due_field = "due_at" if spec.due_at is not None else "local_due"
    if spec.due_at is not None:
        if zone is not None:
            tz_mode, tz_name, anchor = "zoned", spec.timezone, to_local(spec.due_at, zone)
        else:
            tz_name = offset_name(spec.due_at)
            zone = resolve_zone(tz_name)
            tz_mode, anchor = "fixed", spec.due_at.replace(tzinfo=None)
    else:
        assert spec.local_due is not None
        if spec.local_due.tzinfo is not None:
            err("local_due", "local_due is a wall-clock time without offset; use due_at for an instant")
            return {}, errors
        anchor = spec.local_due
        if zone is not None:
            tz_mode, tz_name = "zoned", spec.timezone
        else:
            tz_mode, tz_name = "floating", default_zone or "UTC"
            try:
                zone = resolve_zone(tz_name)
            except DomainError:
                tz_name, zone = "UTC", resolve_zone("UTC")
    alarms: list[int] = []
    for i, value in enumerate(spec.alarms if spec.alarms is not None else [0]):
        try:
            alarms.append(parse_offset(value, f"alarms[{i}]"))
        except DomainError as exc:
            err(exc.field, exc.message)
    exdates = [to_local(x, zone) if x.tzinfo else x.replace(microsecond=0) for x in spec.exdates]
    if errors:
        return {}, errors
    try:
        schedule = Schedule.build(anchor, zone, spec.rrule, exdates, alarms or [0])
        schedule.validate_fires()
    except DomainError as exc:
        err(exc.field, exc.message)
        return {}, errors
    first = schedule.first_utc
    if not schedule.recurring and check_past and first < now - MAX_PAST:
        err(due_field, "the due time is more than 5 minutes in the past")
        return {}, errors
    nxt = schedule.next_fire(not_before=now)
    if nxt is None and not schedule.recurring and first >= now - MAX_PAST:
        # Due a moment ago (within the grace): deliver it now, once.
        nxt = (first, schedule.alarms[-1], first + timedelta(seconds=schedule.alarms[-1]))
    if nxt is None and schedule.recurring and check_past:
        err("rrule", "this RRULE has no occurrence in the future")
        return {}, errors
    columns = {
        "anchor_local": schedule.anchor_local,
        "timezone": tz_name,
        "tz_mode": tz_mode,
        "rrule": schedule.rrule and _stored_rrule(schedule.rrule, zone),
        "exdates": list(schedule.exdates),
        "alarms": list(schedule.alarms),
        "status": "scheduled" if nxt else "fired",
        "due_at": nxt[0] if nxt else first,
        "next_occurrence_at": nxt[0] if nxt else None,
        "next_offset_s": nxt[1] if nxt else None,
        "next_fire_at": nxt[2] if nxt else None,
    }
    return columns, errors


def _stored_rrule(text: str, zone) -> str:
    from .domain import normalize_rrule

    return normalize_rrule(text, zone)[0]


def schedule_of(row: asyncpg.Record | dict, *, exdates: list[datetime] | None = None) -> Schedule:
    return Schedule.build(
        row["anchor_local"],
        resolve_zone(row["timezone"]),
        row["rrule"],
        exdates if exdates is not None else list(row["exdates"]),
        list(row["alarms"]),
    )


def spec_of(row: asyncpg.Record) -> TimeSpec:
    anchor = row["anchor_local"]
    alarms: list[int | str] = [format_offset(a) for a in row["alarms"]]
    if row["tz_mode"] == "fixed":
        return TimeSpec(
            localize(anchor, resolve_zone(row["timezone"])), None, None, row["rrule"], list(row["exdates"]), alarms
        )
    tz = row["timezone"] if row["tz_mode"] == "zoned" else None
    return TimeSpec(None, anchor, tz, row["rrule"], list(row["exdates"]), alarms)


def to_reminder(row: asyncpg.Record | dict, access: str = "owner") -> dict[str, Any]:
    """A reminder as the API returns it; a friend's carries its owner (``shared_by``) and the
    caller's ``access``."""
    return {
        "id": row["id"],
        "title": row["title"],
        "notes": row["notes"],
        "phrase": row["phrase"],
        "source": row["source"],
        "priority": row["priority"],
        "tags": list(row["tags"]),
        "status": row["status"],
        "due_at": row["due_at"],
        "local_due": row["anchor_local"],
        "timezone": row["timezone"],
        "tz_mode": row["tz_mode"],
        "rrule": row["rrule"],
        "exdates": list(row["exdates"]),
        "alarms": [format_offset(a) for a in row["alarms"]],
        "next_fire_at": row["next_fire_at"],
        "held_for_quiet_hours": row["held_for_quiet_hours"],
        "last_fired_at": row["last_fired_at"],
        "fired_count": row["fired_count"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "completed_at": row["completed_at"],
        "cancelled_at": row["cancelled_at"],
        "access": access,
        "shared_by": row["uid"] if access in ("view", "edit") else None,
        "created_by": row["created_by"],
        "refused_at": row["refused_at"],
    }


def _event_payload(uid: str, reminder: dict[str, Any]) -> dict[str, Any]:
    return {
        "uid": uid,
        "reminder_id": str(reminder["id"]),
        "status": reminder["status"],
        "due_at": str(reminder["due_at"]),
        "next_fire_at": str(reminder["next_fire_at"]) if reminder["next_fire_at"] else None,
    }


async def _announce(
    conn: asyncpg.Connection, event_type: str, uid: str, reminder: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """Write the change's domain event to the outbox, inside the change's transaction: it
    commits (and is relayed) exactly when the change does."""
    await repo.add_outbox(conn, event_type, {**_event_payload(uid, reminder), **extra})
    return reminder


def compose_row(
    uid: str, item: ReminderCreate, *, default_zone: str | None, now: datetime, prefix: str = ""
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    spec = TimeSpec(item.due_at, item.local_due, item.timezone, item.rrule, item.exdates, item.alarms)
    columns, errors = compose_schedule(spec, default_zone=default_zone, now=now, prefix=prefix)
    if errors:
        return {}, errors
    row = {
        "id": uuid.uuid4(),
        "uid": uid,
        "title": item.title.strip(),
        "notes": item.notes,
        "phrase": item.phrase,
        "source": item.source,
        "priority": item.priority,
        "tags": sorted(set(item.tags)),
        **columns,
    }
    return row, []


def _needs_user_zone(items: list[ReminderCreate]) -> bool:
    return any(i.local_due is not None and i.timezone is None for i in items)


async def _default_zone(users: UsersClient, principal: Principal, items: list[ReminderCreate]) -> str | None:
    if not _needs_user_zone(items):
        return None
    prefs = await users.preferences(principal)
    return prefs.timezone


# ---------------------------------------------------------------- CRUD


def _as_service(uid: str) -> Principal:
    """Another user's identity for the users service (their preferences), as the worker
    asks for them; used only after the caller's right to act on that user's reminder is
    established."""
    return Principal(uid=uid, roles=("service",))


async def _check_may_create_for(friends: FriendsClient, principal: Principal, owner: str) -> None:
    """One decision, the friends service's: the owner granted the caller ``trusted``."""
    perm = await friends.may_create_for(principal, owner)
    if perm.allowed:
        return
    if perm.blocked:
        reason, why = "blocked", "one of you has blocked the other"
    elif not perm.friends:
        reason, why = "not_friends", f"you are not friends with {owner}"
    else:
        reason, why = (
            "not_trusted",
            f"{owner} grants you '{perm.tier}', and creating reminders for them needs 'trusted'",
        )
    raise Forbidden(
        f"You may not create reminders for {owner}: {why}", code="friend_permission_required", extra={"reason": reason}
    )


async def create(
    conn: asyncpg.Connection, users: UsersClient, friends: FriendsClient, principal: Principal, body: ReminderCreateFor
) -> dict:
    """The caller's reminder, or (``for_user_id``) one for a friend who granted the caller
    ``trusted``: it is the friend's own (their list, their scheduler, their notifications),
    with ``source=friend`` and ``created_by`` the caller."""
    owner, created_by = principal.uid, None
    if body.for_user_id is not None and body.for_user_id != principal.uid:
        owner, created_by = body.for_user_id, principal.uid
        await _check_may_create_for(friends, principal, owner)
    owner_principal = principal if created_by is None else _as_service(owner)
    default_zone = await _default_zone(users, owner_principal, [body])  # a floating reminder follows its owner's zone
    row, errors = compose_row(owner, body, default_zone=default_zone, now=utcnow())
    if errors:
        raise _invalid(errors)
    extra: dict[str, Any] = {}
    if created_by is not None:
        row.update(source="friend", created_by=created_by)
        extra["created_by"] = created_by
    async with conn.transaction():
        inserted = await repo.insert_reminders(conn, [row])
        # The creator cannot read it afterwards (it is the owner's): this answer says so.
        access = "owner" if created_by is None else "creator"
        return await _announce(conn, "reminder.created", owner, to_reminder(inserted[0], access), **extra)


_ITEMS = TypeAdapter(list[ReminderCreate])


def loc_field(loc: tuple | list) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out


async def create_many(
    conn: asyncpg.Connection, users: UsersClient, principal: Principal, raw_items: list[dict[str, Any]]
) -> dict:
    errors: list[dict[str, str]] = []
    items: list[ReminderCreate | None] = []
    try:
        items.extend(_ITEMS.validate_python(raw_items))  # one call for the whole list
    except ValidationError:
        # Some item is bad: validate one by one to keep the good ones, whose domain errors
        # are reported in the same 400.
        for i, raw in enumerate(raw_items):
            try:
                items.append(ReminderCreate.model_validate(raw))
            except ValidationError as exc:
                items.append(None)
                errors.extend(
                    {"field": f"items[{i}]." + loc_field(e.get("loc", ())), "message": e.get("msg", "invalid")}
                    for e in exc.errors()
                )
    default_zone = await _default_zone(users, principal, [i for i in items if i is not None])
    now = utcnow()
    rows = []
    for i, item in enumerate(items):
        if item is None:
            continue
        row, errs = compose_row(principal.uid, item, default_zone=default_zone, now=now, prefix=f"items[{i}].")
        rows.append(row)
        errors.extend(errs)
    if errors:
        raise _invalid(errors)  # all-or-nothing: nothing stored
    async with conn.transaction():
        inserted = await repo.insert_reminders(conn, rows)
        await repo.add_outbox(
            conn,
            "reminders.bulk_created",
            {"uid": principal.uid, "count": len(inserted), "reminder_ids": [str(r["id"]) for r in inserted]},
        )
    return {"items": [to_reminder(r) for r in inserted]}


def _not_found() -> NotFound:
    return NotFound("No such reminder", code="reminder_not_found")


@dataclass(frozen=True)
class Access:
    owner_id: str
    level: str  # domain.ACCESS_LEVELS


async def authorize(
    conn: asyncpg.Connection,
    friends: FriendsClient | None,
    principal: Principal,
    reminder_id: uuid.UUID,
    action: str,
    *,
    lock: bool = False,
) -> tuple[Access, asyncpg.Record]:
    """THE authorization decision for one reminder id, for every route that takes one;
    returns the caller's access and the row (locked with ``lock``).

    The caller's own reminder allows everything (one query, as before sharing). Otherwise
    the friends service is asked which reminders are shared with the caller (the same call
    the list makes), and a grant counts only if its owner really owns the reminder. No
    grant → 404 (never reveal that the id exists); a grant that does not allow ``action``
    (domain.permits) → 403."""
    row = await repo.get_reminder(conn, principal.uid, reminder_id, for_update=lock)
    if row is not None:
        return Access(principal.uid, "owner"), row
    grants = [g for g in await friends.shared_with(principal) if g.reminder_id == reminder_id] if friends else []
    if grants:
        row = await repo.get_shared_reminder(conn, reminder_id, [g.owner_id for g in grants], for_update=lock)
    if row is None:
        raise _not_found()
    level = next(g.access for g in grants if g.owner_id == row["uid"])  # the newest grant (friends lists newest first)
    if not permits(level, action):
        if action == "edit":
            raise Forbidden("This reminder is shared with you read-only", code="reminder_read_only")
        raise Forbidden(f"Only the owner may {action} this reminder", code="reminder_owner_only")
    return Access(row["uid"], level), row


async def get(
    conn: asyncpg.Connection, friends: FriendsClient | None, principal: Principal, reminder_id: uuid.UUID
) -> dict:
    """The caller's own reminder, or one a friend shares with them."""
    access, row = await authorize(conn, friends, principal, reminder_id, "read")
    return to_reminder(row, access.level)


def _access_of(row: asyncpg.Record, principal: Principal, shared: list[SharedReminder]) -> str:
    """The caller's access to a listed row (the query matched a friend's row on a grant of
    its (owner, id), so one exists); the newest grant wins, as in ``authorize``."""
    if row["uid"] == principal.uid:
        return "owner"
    return next((g.access for g in shared if (g.owner_id, g.reminder_id) == (row["uid"], row["id"])), "view")


async def list_(
    conn: asyncpg.Connection,
    principal: Principal,
    *,
    friends: FriendsClient | None = None,
    scope: str = "all",
    status: str | None,
    due_from: datetime | None,
    due_to: datetime | None,
    tag: str | None,
    q: str | None,
    limit: int,
    after: list[Any] | None,
) -> dict:
    from eindr_common.pagination import encode_cursor

    cursor = None
    if after is not None:
        try:
            cursor = (datetime.fromisoformat(after[0]), uuid.UUID(after[1]))
        except (ValueError, TypeError, IndexError) as exc:
            raise BadRequest(
                "cursor is not one this API issued",
                code="invalid_cursor",
                errors=[{"field": "cursor", "message": "malformed cursor"}],
            ) from exc
    # scope: all = own + shared with me; own; shared (friends' reminders shared with me).
    shared = await friends.shared_with(principal) if friends is not None and scope != "own" else []
    rows = await repo.list_reminders(
        conn,
        principal.uid,
        status=status,
        due_from=due_from,
        due_to=due_to,
        tag=tag,
        q=q,
        limit=limit + 1,
        after=cursor,
        own=scope != "shared",
        shared=list(dict.fromkeys((g.owner_id, g.reminder_id) for g in shared)),
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor([rows[-1]["due_at"].isoformat(), str(rows[-1]["id"])]) if more and rows else None
    return {"items": [to_reminder(r, _access_of(r, principal, shared)) for r in rows], "next_cursor": next_cursor}


async def _locked(
    conn: asyncpg.Connection, friends: FriendsClient | None, principal: Principal, reminder_id: uuid.UUID, action: str
) -> asyncpg.Record:
    """The row locked for an owner-only ``action`` (a friend's grant never allows one: 403)."""
    _, row = await authorize(conn, friends, principal, reminder_id, action, lock=True)
    return row


async def patch(
    conn: asyncpg.Connection,
    users: UsersClient,
    friends: FriendsClient | None,
    principal: Principal,
    reminder_id: uuid.UUID,
    body: ReminderPatch,
) -> dict:
    """By the owner, or by a friend the reminder is shared with for editing: it stays the
    owner's (same id, the owner's scheduler and notifications, events under the owner with
    ``by``)."""
    sent = body.model_fields_set
    for required in ("title", "priority", "tags"):
        if required in sent and getattr(body, required) is None:
            raise _invalid([{"field": required, "message": f"{required} cannot be null"}])
    async with conn.transaction():
        access, row = await authorize(conn, friends, principal, reminder_id, "edit", lock=True)
        owner = access.owner_id
        by = {"by": principal.uid} if owner != principal.uid else {}
        fields: dict[str, Any] = {}
        for name in ("title", "notes", "phrase", "priority", "tags"):
            if name in sent:
                value = getattr(body, name)
                fields[name] = value.strip() if name == "title" else (sorted(set(value)) if name == "tags" else value)
        reschedule = False
        if sent & TIME_FIELDS:
            spec = spec_of(row)
            for name in sent & TIME_FIELDS:
                value = getattr(body, name)
                setattr(spec, name, value if value is not None or name not in ("exdates",) else [])
            if "due_at" in sent and body.due_at is not None:
                spec.local_due = None
            if "local_due" in sent and body.local_due is not None:
                spec.due_at = None
            default_zone = row["timezone"] if row["tz_mode"] == "floating" else None
            if spec.local_due is not None and spec.timezone is None and default_zone is None:
                owner_principal = principal if owner == principal.uid else _as_service(owner)
                default_zone = (await users.preferences(owner_principal)).timezone
            moved = bool(sent & {"due_at", "local_due", "timezone"})
            columns, errors = compose_schedule(spec, default_zone=default_zone, now=utcnow(), check_past=moved)
            if errors:
                raise _invalid(errors)
            if row["status"] in ("completed", "cancelled"):
                columns.update(status=row["status"], next_occurrence_at=None, next_offset_s=None, next_fire_at=None)
            fields.update(columns, held_for_quiet_hours=False)
            reschedule = True
        if not fields:
            return await _announce(conn, "reminder.updated", owner, to_reminder(row, access.level), **by)
        updated = await repo.update_reminder(conn, owner, reminder_id, fields, reschedule=reschedule)
        return await _announce(conn, "reminder.updated", owner, to_reminder(updated, access.level), **by)


async def delete(
    conn: asyncpg.Connection, friends: FriendsClient | None, principal: Principal, reminder_id: uuid.UUID
) -> None:
    async with conn.transaction():
        if not await repo.delete_reminder(conn, principal.uid, reminder_id):
            # Not the caller's: 404, or 403 when a friend shares it with them.
            await authorize(conn, friends, principal, reminder_id, "delete")
            raise _not_found()
        await repo.add_outbox(conn, "reminder.deleted", {"uid": principal.uid, "reminder_id": str(reminder_id)})


# ---------------------------------------------------------------- lifecycle

_UNSCHEDULED = {"next_occurrence_at": None, "next_offset_s": None, "next_fire_at": None, "held_for_quiet_hours": False}


async def cancel(
    conn: asyncpg.Connection, friends: FriendsClient | None, principal: Principal, reminder_id: uuid.UUID, scope: str
) -> dict:
    async with conn.transaction():
        row = await _locked(conn, friends, principal, reminder_id, "cancel")
        if row["status"] in ("cancelled", "completed"):
            return await _announce(conn, "reminder.cancelled", principal.uid, to_reminder(row), scope=scope)
        if scope == "next":
            if not row["rrule"]:
                raise _invalid(
                    [{"field": "scope", "message": "scope=next is for recurring reminders; this one fires once"}]
                )
            if row["next_occurrence_at"] is None:
                raise Conflict("This series has no next occurrence to cancel", code="no_next_occurrence")
            zone = resolve_zone(row["timezone"])
            exdates = list(row["exdates"]) + [to_local(row["next_occurrence_at"], zone)]
            schedule = schedule_of(row, exdates=exdates)
            nxt = schedule.next_fire(not_before=utcnow())
            fields = {"exdates": exdates, **_next_columns(nxt, row)}
            if nxt is None:
                fields.update(status="cancelled", cancelled_at=utcnow())
        else:
            fields = {"status": "cancelled", "cancelled_at": utcnow(), **_UNSCHEDULED}
        updated = await repo.update_reminder(conn, principal.uid, reminder_id, fields, reschedule=True)
        return await _announce(conn, "reminder.cancelled", principal.uid, to_reminder(updated), scope=scope)


def _next_columns(nxt: tuple[datetime, int, datetime] | None, row: asyncpg.Record) -> dict[str, Any]:
    if nxt is None:
        return {"status": "fired", "due_at": row["last_occurrence_at"] or row["due_at"], **_UNSCHEDULED}
    return {
        "status": "scheduled",
        "due_at": nxt[0],
        "next_occurrence_at": nxt[0],
        "next_offset_s": nxt[1],
        "next_fire_at": nxt[2],
        "held_for_quiet_hours": False,
    }


async def cancel_matching(conn: asyncpg.Connection, principal: Principal, body: CancelFilter) -> dict:
    if not body.model_fields_set or all(getattr(body, f) is None for f in ("ids", "due_from", "due_to", "tag", "q")):
        raise _invalid([{"field": "body", "message": "give at least one filter: ids, due_from, due_to, tag or q"}])
    if body.due_from and body.due_to and body.due_from >= body.due_to:
        raise _invalid([{"field": "due_to", "message": "due_to must be after due_from"}])
    async with conn.transaction():
        n = await repo.cancel_matching(
            conn, principal.uid, ids=body.ids, due_from=body.due_from, due_to=body.due_to, tag=body.tag, q=body.q
        )
        if n:
            await repo.add_outbox(conn, "reminders.cancelled", {"uid": principal.uid, "count": n})
    return {"cancelled": n}


def snooze_until(body: SnoozeBody, now: datetime) -> datetime:
    given = [f for f in ("minutes", "duration", "until") if getattr(body, f) is not None]
    if len(given) != 1:
        raise _invalid([{"field": "minutes", "message": "give exactly one of minutes, duration or until"}])
    if body.minutes is not None:
        return now + timedelta(minutes=body.minutes)
    if body.duration is not None:
        text = body.duration.strip()
        try:
            seconds = -parse_offset("-" + text.lstrip("+"), "duration")
        except DomainError as exc:
            raise _invalid(
                [{"field": "duration", "message": "a duration such as 10m, 1h, PT15M (at most 7 days)"}]
            ) from exc
        if seconds <= 0 or seconds > 7 * 86400:
            raise _invalid([{"field": "duration", "message": "a duration between 1 second and 7 days"}])
        return now + timedelta(seconds=seconds)
    assert body.until is not None
    if body.until <= now:
        raise _invalid([{"field": "until", "message": "until must be in the future"}])
    if body.until > now + timedelta(days=366):
        raise _invalid([{"field": "until", "message": "until must be within a year"}])
    return body.until.astimezone(UTC)


async def snooze(
    conn: asyncpg.Connection,
    friends: FriendsClient | None,
    principal: Principal,
    reminder_id: uuid.UUID,
    body: SnoozeBody,
) -> dict:
    now = utcnow()
    until = snooze_until(body, now).replace(microsecond=0)
    async with conn.transaction():
        row = await _locked(conn, friends, principal, reminder_id, "snooze")
        if row["status"] in ("cancelled", "completed"):
            raise Conflict(
                f"This reminder is {row['status']}; reopen it before snoozing", code=f"reminder_{row['status']}"
            )
        # Snooze the occurrence the user was last reminded of; before any fire, the pending one.
        occ = row["last_occurrence_at"] or row["next_occurrence_at"] or row["due_at"]
        offset = int((until - occ).total_seconds())
        fields = {
            "status": "scheduled",
            "next_occurrence_at": occ,
            "next_offset_s": offset,
            "next_fire_at": occ + timedelta(seconds=offset),
            "held_for_quiet_hours": False,
        }
        if row["next_occurrence_at"] is None or row["next_occurrence_at"] <= occ:
            fields["due_at"] = occ
        updated = await repo.update_reminder(conn, principal.uid, reminder_id, fields, reschedule=True)
        return await _announce(conn, "reminder.snoozed", principal.uid, to_reminder(updated))


async def complete(
    conn: asyncpg.Connection, friends: FriendsClient | None, principal: Principal, reminder_id: uuid.UUID
) -> dict:
    async with conn.transaction():
        row = await _locked(conn, friends, principal, reminder_id, "complete")
        if row["status"] == "completed":
            return await _announce(conn, "reminder.completed", principal.uid, to_reminder(row))
        if row["status"] == "cancelled":
            raise Conflict("A cancelled reminder cannot be completed; reopen it first", code="reminder_cancelled")
        updated = await repo.update_reminder(
            conn,
            principal.uid,
            reminder_id,
            {"status": "completed", "completed_at": utcnow(), **_UNSCHEDULED},
            reschedule=True,
        )
        return await _announce(conn, "reminder.completed", principal.uid, to_reminder(updated))


async def reopen(
    conn: asyncpg.Connection, friends: FriendsClient | None, principal: Principal, reminder_id: uuid.UUID
) -> dict:
    async with conn.transaction():
        row = await _locked(conn, friends, principal, reminder_id, "reopen")
        if row["status"] in ("scheduled", "fired"):
            return await _announce(conn, "reminder.reopened", principal.uid, to_reminder(row))
        nxt = schedule_of(row).next_fire(not_before=utcnow())
        fields = {**_next_columns(nxt, row), "completed_at": None, "cancelled_at": None}
        updated = await repo.update_reminder(conn, principal.uid, reminder_id, fields, reschedule=True)
        return await _announce(conn, "reminder.reopened", principal.uid, to_reminder(updated))


async def refuse(
    conn: asyncpg.Connection, friends: FriendsClient | None, principal: Principal, reminder_id: uuid.UUID
) -> dict:
    """The owner turns down a reminder a friend created for them: cancelled, never fires,
    marked ``refused_at``; the ``reminder.refused`` event names the creator. Idempotent."""
    async with conn.transaction():
        row = await _locked(conn, friends, principal, reminder_id, "refuse")
        if row["source"] != "friend":
            raise Conflict(
                "Only a reminder a friend created for you can be refused; cancel or delete it instead",
                code="reminder_not_from_friend",
            )
        if row["refused_at"] is not None:
            return to_reminder(row)
        now = utcnow()
        fields = {"status": "cancelled", "cancelled_at": row["cancelled_at"] or now, "refused_at": now, **_UNSCHEDULED}
        updated = await repo.update_reminder(conn, principal.uid, reminder_id, fields, reschedule=True)
        return await _announce(
            conn, "reminder.refused", principal.uid, to_reminder(updated), created_by=row["created_by"]
        )


async def occurrences(
    conn: asyncpg.Connection, friends: FriendsClient | None, principal: Principal, reminder_id: uuid.UUID, limit: int
) -> dict:
    _, row = await authorize(conn, friends, principal, reminder_id, "read")
    if row["status"] in ("cancelled", "completed"):
        return {"items": []}
    schedule = schedule_of(row)
    zone = resolve_zone(row["timezone"])
    start = max(utcnow(), row["next_occurrence_at"] or utcnow())
    items = [
        {"occurrence_at": o, "local": to_local(o, zone)}
        for o in schedule.occurrences(start, inclusive=True, limit=limit)
    ]
    return {"items": items}


# ---------------------------------------------------------------- notifications


def to_delivery(row: asyncpg.Record) -> dict[str, Any]:
    channels = row["channels"]
    if isinstance(channels, str):
        channels = json.loads(channels)
    return {
        "id": row["id"],
        "seq": row["seq"],
        "reminder_id": row["reminder_id"],
        "title": row["title"],
        "priority": row["priority"],
        "occurrence_at": row["occurrence_at"],
        "offset": format_offset(row["offset_s"]),
        "fire_at": row["fire_at"],
        "delivered_at": row["delivered_at"],
        "channels": channels,
    }


async def list_deliveries(conn: asyncpg.Connection, principal: Principal, limit: int, after: list[Any] | None) -> dict:
    from eindr_common.pagination import encode_cursor

    before = None
    if after is not None:
        if not after or not isinstance(after[0], int):
            raise BadRequest(
                "cursor is not one this API issued",
                code="invalid_cursor",
                errors=[{"field": "cursor", "message": "malformed cursor"}],
            )
        before = after[0]
    rows = await repo.list_deliveries(conn, principal.uid, limit=limit + 1, before_seq=before)
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [to_delivery(r) for r in rows],
        "next_cursor": encode_cursor([rows[-1]["seq"]]) if more and rows else None,
    }


# ---------------------------------------------------------------- bulk jobs


async def submit_job(
    conn: asyncpg.Connection, users: UsersClient, principal: Principal, items: list[dict[str, Any]]
) -> dict:
    needs_zone = any(
        isinstance(i, dict) and i.get("local_due") is not None and i.get("timezone") is None for i in items
    )
    zone = (await users.preferences(principal)).timezone if needs_zone else None
    row = await repo.insert_job(conn, uuid.uuid4(), principal.uid, "bulk_create", len(items), items, zone)
    return to_job(row)


def to_job(row: asyncpg.Record) -> dict[str, Any]:
    failures = row["failures"]
    return {
        "id": row["id"],
        "kind": row["kind"],
        "status": row["status"],
        "total": row["total"],
        "processed": row["processed"],
        "succeeded": row["succeeded"],
        "failed": len(failures),
        "failures": failures,
        "created_at": row["created_at"],
        "finished_at": row["finished_at"],
    }


async def get_job(conn: asyncpg.Connection, principal: Principal, job_id: uuid.UUID) -> dict:
    row = await repo.get_job(conn, principal.uid, job_id)
    if row is None:
        raise NotFound("No such job", code="job_not_found")
    return to_job(row)


def _pydantic_failures(index: int, exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"index": index, "field": loc_field(e.get("loc", ())) or "item", "message": e.get("msg", "invalid")}
        for e in exc.errors()
    ]


async def run_job(pool: asyncpg.Pool, job: asyncpg.Record, worker: str, lease_s: float, chunk: int) -> None:
    """Create a job's reminders in chunks; each chunk and its progress commit together, so a
    worker that dies mid-job is resumed by another from the last committed chunk, and the
    (job, index) unique key keeps every item created at most once."""
    items: list[dict[str, Any]] = job["payload"]
    failures: list[dict[str, Any]] = list(job["failures"])
    processed, succeeded = job["processed"], job["succeeded"]
    uid = job["uid"]
    while processed < len(items):
        batch = items[processed : processed + chunk]
        rows = []
        now = utcnow()
        for offset, raw in enumerate(batch):
            index = processed + offset
            try:
                item = ReminderCreate.model_validate(raw)
            except ValidationError as exc:
                failures.extend(_pydantic_failures(index, exc))
                continue
            row, errors = compose_row(uid, item, default_zone=job["timezone_default"], now=now)
            if errors:
                failures.extend({"index": index, **e} for e in errors)
                continue
            row.update(job_id=job["id"], job_index=index)
            rows.append(row)
        async with pool.acquire() as conn, conn.transaction():
            if rows:
                await repo.insert_reminders(conn, rows, skip_existing_job_items=True)
            processed += len(batch)
            succeeded += len(rows)
            await repo.job_progress(
                conn, job["id"], worker, lease_s, processed, succeeded, failures, processed >= len(items)
            )


# ---------------------------------------------------------------- events from users


async def reanchor_user(conn: asyncpg.Connection, uid: str, new_timezone: str) -> int:
    """user.timezone_changed: floating reminders keep their wall clock in the new zone;
    zoned and fixed ones do not move. Idempotent."""
    try:
        zone = resolve_zone(new_timezone)
    except DomainError:
        log.warning("user.timezone_changed with an unknown zone; ignored", extra={"fields": {"uid": uid}})
        return 0
    now = utcnow()
    changed = 0
    async with conn.transaction():
        for row in await repo.floating_reminders(conn, uid):
            if row["timezone"] == new_timezone:
                continue
            schedule = Schedule.build(
                row["anchor_local"], zone, row["rrule"], list(row["exdates"]), list(row["alarms"])
            )
            fields: dict[str, Any] = {"timezone": new_timezone}
            if row["status"] == "scheduled":
                if row["next_offset_s"] is not None and row["next_offset_s"] > 0 and row["next_occurrence_at"]:
                    # A snooze is an instant the user chose; it stays.
                    pass
                else:
                    nxt = schedule.next_fire(not_before=now)
                    if nxt is None and not schedule.recurring:
                        # The same wall clock in the new zone has already passed: a one-off
                        # that never fired fires now rather than being lost.
                        first, last_alarm = schedule.first_utc, schedule.alarms[-1]
                        nxt = (first, last_alarm, max(first + timedelta(seconds=last_alarm), now))
                    fields.update(_next_columns(nxt, row))
            await repo.update_reminder(conn, uid, row["id"], fields, reschedule=True)
            changed += 1
    return changed


async def erase_user(conn: asyncpg.Connection, uid: str) -> int:
    async with conn.transaction():
        return await repo.erase_user(conn, uid)


# ---------------------------------------------------------------- firing (the worker's use case)


@dataclass
class FireOutcome:
    result: str  # delivered | held | stale | duplicate
    delivery: asyncpg.Record | None = None
    next_fire_at: datetime | None = None
    next_version: int | None = None
    reminder: asyncpg.Record | None = None


async def fire(
    conn: asyncpg.Connection,
    reminder_id: uuid.UUID,
    version: int,
    fire_at: datetime,
    prefs: Preferences,
    *,
    worker: str,
    push_enabled: bool,
    misfire_grace_s: float,
    keep_lease_s: float | None = None,
    window_s: float = 0,
) -> FireOutcome:
    """Deliver one (occurrence, offset) exactly once: in one transaction, with the reminder
    row locked, write the delivery row (unique per reminder/occurrence/offset) and advance
    the reminder to its next fire. A stale claim (edited, cancelled, already fired) is a no-op."""
    async with conn.transaction():
        row = await repo.lock_for_fire(conn, reminder_id)
        if row is None or row["status"] != "scheduled" or row["version"] != version or row["next_fire_at"] != fire_at:
            return FireOutcome("stale")
        occ, offset = row["next_occurrence_at"], row["next_offset_s"]
        now = utcnow()
        quiet = prefs.quiet_hours
        if quiet and row["priority"] != "urgent":
            try:
                zone = resolve_zone(prefs.timezone)
                hold = quiet_hold_until(fire_at, zone, parse_hhmm(quiet["start"]), parse_hhmm(quiet["end"]))
            except (DomainError, KeyError, ValueError, TypeError):
                hold = None
            if hold is not None:
                await repo.advance(
                    conn,
                    reminder_id,
                    status="scheduled",
                    due_at=row["due_at"],
                    next_occurrence_at=occ,
                    next_offset_s=offset,
                    next_fire_at=hold,
                    fired=None,
                    held=True,
                )
                return FireOutcome("held", next_fire_at=hold, reminder=row)
        delivery = None
        if not row["already_delivered"]:
            channels = {"sse": "published"}
            wants_push = "push" in prefs.notification_channels
            if wants_push:
                channels["push"] = "pending" if push_enabled else "not_configured"
            delivery = await repo.insert_delivery(
                conn,
                {
                    "id": uuid.uuid4(),
                    "uid": row["uid"],
                    "reminder_id": reminder_id,
                    "occurrence_at": occ,
                    "offset_s": offset,
                    "fire_at": fire_at,
                    "title": row["title"],
                    "priority": row["priority"],
                    "channels": channels,
                    "push_pending": wants_push and push_enabled,
                    "worker": worker,
                },
            )
        nominal = occ + timedelta(seconds=offset)
        schedule = schedule_of(row)
        nxt = schedule.next_fire(
            after=(max(nominal, fire_at) if offset > 0 else nominal, occ),
            not_before=now - timedelta(seconds=misfire_grace_s),
        )
        if nxt is None:
            await repo.advance(
                conn,
                reminder_id,
                status="fired",
                due_at=occ,
                next_occurrence_at=None,
                next_offset_s=None,
                next_fire_at=None,
                fired=(occ, now),
            )
            return FireOutcome("delivered" if delivery else "duplicate", delivery, reminder=row)
        # The next fire is inside our window: keep it instead of waiting for the next claim.
        keep = keep_lease_s is not None and nxt[2] <= now + timedelta(seconds=window_s)
        await repo.advance(
            conn,
            reminder_id,
            status="scheduled",
            due_at=nxt[0],
            next_occurrence_at=nxt[0],
            next_offset_s=nxt[1],
            next_fire_at=nxt[2],
            fired=(occ, now),
            keep_lease=(worker, keep_lease_s) if keep else None,
        )
        result = "delivered" if delivery else "duplicate"
        if keep:
            return FireOutcome(result, delivery, nxt[2], row["version"] + 1, reminder=row)
        return FireOutcome(result, delivery, reminder=row)
