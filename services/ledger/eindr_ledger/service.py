"""Use cases of the ledger: each one transaction — rules from ``domain``, SQL from
``repository`` (scoped to the caller), calls through ``clients``, events to the outbox."""

from __future__ import annotations

import asyncio
import bisect
import csv
import functools
import io
import logging
import operator
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from eindr_common.errors import BadRequest, Conflict, Forbidden, NotFound, Problem
from eindr_common.identity import Principal
from eindr_common.observability import current_request_id
from eindr_common.pagination import PageParams, encode_cursor

from . import domain, metrics, outbox, repository
from .clients import FriendsClient, RemindersClient
from .schemas import DisputeRequest, EntryCreate, EntryPatch, SettleRequest

log = logging.getLogger("eindr.ledger.service")


_RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)


def retry_on_conflict(fn):
    """Re-runs a write use case (each is one transaction) when PostgreSQL aborted it for a
    deadlock or serialization failure — possible when two writers take the same totals
    rows in opposite orders. The aborted attempt left nothing behind."""

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        for attempt in range(5):
            try:
                return await fn(*args, **kwargs)
            except _RETRYABLE:
                if attempt == 4:
                    raise
                log.warning("transaction aborted by a conflict; retrying", extra={"fields": {"use_case": fn.__name__}})
                await asyncio.sleep(random.uniform(0.005, 0.05) * (attempt + 1))

    return wrapper


@dataclass
class Deps:
    pool: asyncpg.Pool
    redis: aioredis.Redis
    friends: FriendsClient
    reminders: RemindersClient


def _money_problem(exc: domain.MoneyError) -> BadRequest:
    code = "invalid_currency" if exc.field == "currency" else "invalid_amount"
    return BadRequest(f"{exc.field}: {exc.message}", code=code, errors=[{"field": exc.field, "message": exc.message}])


def _entry_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound("No such ledger entry", code="entry_not_found") from None


def _not_found() -> NotFound:
    return NotFound("No such ledger entry", code="entry_not_found")


def entry_json(row: asyncpg.Record, viewer: str) -> dict[str, Any]:
    mine = row["owner_id"] == viewer
    currency = row["currency"]
    if mine:
        counterparty = {
            "user_id": row["counterparty_user_id"],
            "name": row["counterparty_name"],
            "phone_hash": row["counterparty_phone_hash"],
        }
    else:
        counterparty = {"user_id": row["owner_id"], "name": None, "phone_hash": None}
    is_entry = row["kind"] == "entry"
    settled = row["settled_minor"] if is_entry else 0
    remaining = row["amount_minor"] - settled if is_entry and row["status"] != "voided" else 0
    return {
        "id": str(row["id"]),
        "kind": row["kind"],
        "owner_id": row["owner_id"],
        "mirrored": not mine,
        "counterparty": counterparty,
        "contact": row["contact_key"] if mine else domain.user_contact(row["owner_id"]),
        "direction": row["direction"] if mine else domain.flip(row["direction"]),
        "amount": domain.format_minor(row["amount_minor"], currency),
        "currency": currency,
        "settled_amount": domain.format_minor(settled, currency),
        "remaining_amount": domain.format_minor(remaining, currency),
        "status": row["status"],
        "settles_entry_id": str(row["settles_entry_id"]) if row["settles_entry_id"] else None,
        "note": row["note"],
        "occurred_on": row["occurred_on"],
        "due_at": row["due_at"],
        "reminder_id": row["reminder_id"] if mine else None,
        "reminder_error": row["reminder_error"] if mine else None,
        "disputed": row["disputed"],
        "dispute_reason": row["dispute_reason"],
        "disputed_by": row["disputed_by"],
        "created_by": row["created_by"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "voided_at": row["voided_at"],
    }


async def peers_of(deps: Deps, principal: Principal) -> tuple[list[str], bool]:
    """(owners sharing their ledger with the caller, partial?) — partial when friends
    could not be asked: the caller then sees exactly their own entries, and is told so."""
    peers = await deps.friends.ledger_peers(principal)
    if peers is None:
        metrics.FRIENDS_UNAVAILABLE.inc()
        return [], True
    return [p for p in peers if p != principal.uid], False


def _today() -> date:
    return datetime.now(UTC).date()


async def _audit(conn: asyncpg.Connection, actor: str, subject: str, action: str, entry_id: uuid.UUID | None, fields: list[str] | None = None) -> None:
    await repository.add_audit(conn, actor, subject, action, entry_id, fields or [], current_request_id())


def _event_payload(row: asyncpg.Record, **extra: Any) -> dict[str, Any]:
    return {
        "entry_id": str(row["id"]),
        "owner_id": row["owner_id"],
        "counterparty_user_id": row["counterparty_user_id"],
        "kind": row["kind"],
        "currency": row["currency"],
        "amount": domain.format_minor(row["amount_minor"], row["currency"]),
        "direction": row["direction"],
        **extra,
    }


# --- create -----------------------------------------------------------------------------


def _reminder_title(row: asyncpg.Record) -> str:
    who = row["counterparty_name"] or "your friend"
    amount = f"{domain.format_minor(row['amount_minor'], row['currency'])} {row['currency']}"
    if row["direction"] == "they_owe_me":
        return f"{who} owes you {amount}"[:200]
    return f"Pay {who} {amount}"[:200]


async def _make_reminder(deps: Deps, principal: Principal, row: asyncpg.Record) -> asyncpg.Record:
    """Due date → a reminder in the reminders service. The entry is already committed; a
    failure is recorded on it (reminder_error) rather than failing the request."""
    reminder_id: str | None = None
    error: str | None = None
    try:
        reminder_id = await deps.reminders.create(
            principal, title=_reminder_title(row), due_at=row["due_at"],
            key=f"ledger-entry:{row['id']}:{row['due_at'].isoformat()}",
        )
    except Problem as exc:
        error = f"{exc.code}: {exc.detail}"[:500]
        metrics.REMINDER_FAILURES.inc()
        log.warning("reminder not created for a ledger entry", extra={"fields": {"code": exc.code}})
    async with deps.pool.acquire() as conn:
        updated = await repository.set_reminder_result(conn, principal.uid, row["id"], reminder_id, error)
    return updated or row


async def _cancel_reminder(deps: Deps, principal: Principal, reminder_id: str | None) -> None:
    if not reminder_id:
        return
    try:
        await deps.reminders.cancel(principal, reminder_id)
    except Problem as exc:
        log.warning("could not cancel the reminder of a ledger entry", extra={"fields": {"code": exc.code}})


@retry_on_conflict
async def create_entry(deps: Deps, principal: Principal, body: EntryCreate) -> dict[str, Any]:
    try:
        currency = domain.check_currency(body.currency)
        amount_minor = domain.parse_amount(body.amount, currency)
    except domain.MoneyError as exc:
        raise _money_problem(exc) from None
    if body.counterparty_user_id == principal.uid:
        raise BadRequest(
            "You cannot owe yourself", code="self_counterparty",
            errors=[{"field": "counterparty_user_id", "message": "must be someone else"}],
        )
    name = domain.normalize_name(body.counterparty_name) if body.counterparty_name else None
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await repository.insert_entry(
            conn,
            owner_id=principal.uid,
            counterparty_user_id=body.counterparty_user_id,
            counterparty_name=name,
            counterparty_phone_hash=body.counterparty_phone_hash,
            contact_key=domain.contact_key(body.counterparty_user_id, name),
            direction=body.direction,
            currency=currency,
            amount_minor=amount_minor,
            status="open",
            note=body.note,
            occurred_on=body.occurred_on or _today(),
            due_at=body.due_at,
            created_by=principal.uid,
        )
        await _audit(conn, principal.uid, principal.uid, "entry.created", row["id"])
        await repository.add_outbox(conn, "ledger.entry_created", _event_payload(row))
    await outbox.flush_quietly(deps.pool, deps.redis)
    metrics.ENTRIES.labels(currency).inc()
    if row["due_at"] is not None:
        row = await _make_reminder(deps, principal, row)
    return entry_json(row, principal.uid)


# --- read -------------------------------------------------------------------------------


async def get_entry(deps: Deps, principal: Principal, entry_id: str) -> dict[str, Any]:
    eid = _entry_id(entry_id)
    peers, _ = await peers_of(deps, principal)
    async with deps.pool.acquire() as conn:
        row = await repository.get_visible(conn, principal.uid, peers, eid)
        if row is None:
            raise _not_found()
        out = entry_json(row, principal.uid)
        if row["kind"] == "entry":
            out["settlements"] = [entry_json(s, principal.uid) for s in await repository.settlements_of(conn, eid)]
    return out


@dataclass
class ListFilters:
    contact: str | None = None
    status: str | None = None
    currency: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    kind: str | None = None

    def checked(self) -> ListFilters:
        if self.currency is not None:
            try:
                self.currency = domain.check_currency(self.currency)
            except domain.MoneyError as exc:
                raise _money_problem(exc) from None
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise BadRequest("from is after to", code="invalid_date_range", errors=[{"field": "from", "message": "must not be after 'to'"}])
        return self

    def as_kwargs(self) -> dict[str, Any]:
        return {"contact": self.contact, "status": self.status, "currency": self.currency, "date_from": self.date_from, "date_to": self.date_to, "kind": self.kind}


def _after(page: PageParams) -> tuple[date, uuid.UUID] | None:
    if page.after is None:
        return None
    try:
        day, eid = page.after
        return date.fromisoformat(day), uuid.UUID(eid)
    except (ValueError, TypeError):
        raise BadRequest("cursor is not one this API issued", code="invalid_cursor", errors=[{"field": "cursor", "message": "malformed cursor"}]) from None


async def list_entries(deps: Deps, principal: Principal, filters: ListFilters, page: PageParams) -> tuple[dict[str, Any], bool]:
    filters = filters.checked()
    peers, partial = await peers_of(deps, principal)
    async with deps.pool.acquire() as conn:
        rows = await repository.list_visible(conn, principal.uid, peers, limit=page.limit + 1, after=_after(page), **filters.as_kwargs())
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    cursor = encode_cursor([rows[-1]["occurred_on"].isoformat(), str(rows[-1]["id"])]) if more and rows else None
    return {"items": [entry_json(r, principal.uid) for r in rows], "next_cursor": cursor}, partial


def _balance_item(contact: str, currency: str, net: int, entries: int, name: str | None) -> dict[str, Any]:
    """One ``schemas.Balance``, as the plain dict the route serialises directly (a large
    ledger answers ~1,500 of them per request)."""
    return {
        "contact": contact,
        "counterparty": {"user_id": contact[5:] if contact.startswith("user:") else None, "name": name},
        "currency": currency,
        "net_amount": domain.format_minor(abs(net), currency),
        "direction": domain.net_direction(net),
        "entries": entries,
    }


_ROW_KEY = operator.itemgetter(0, 1)  # (contact, currency) of a balances row


def _net_in(own_rows: list[asyncpg.Record], peer_rows: list[asyncpg.Record]) -> list[Any]:
    """The caller's rows (ordered by contact, currency) with the peers' rows about the
    caller netted in, still in that order. Only rows under a peer's 'user:' contact change;
    the rest (most of a large ledger) pass through untouched."""
    theirs = {(contact, currency): (int(net), n) for contact, currency, net, n, _ in peer_rows}
    peer_contacts = {contact for contact, _ in theirs}
    rows: list[Any] = []
    for row in own_rows:
        if row[0] in peer_contacts and (row[0], row[1]) in theirs:
            net, n = theirs.pop((row[0], row[1]))
            row = (row[0], row[1], int(row[2]) + net, row[3] + n, row[4])
        rows.append(row)
    for (contact, currency), (net, n) in theirs.items():
        bisect.insort(rows, (contact, currency, net, n, None), key=_ROW_KEY)
    return rows


async def balances(deps: Deps, principal: Principal) -> dict[str, Any]:
    """Net per contact and currency. The caller's own totals are read while friends is
    asked for peers (the two are independent); peers' totals about the caller are then
    netted in under 'user:<peer>'. All integer minor units: exact."""

    async def own() -> list[asyncpg.Record]:
        async with deps.pool.acquire() as conn:
            return await repository.own_totals(conn, principal.uid)

    own_rows, (peers, partial) = await asyncio.gather(own(), peers_of(deps, principal))
    rows: list[Any] = own_rows
    if peers:
        async with deps.pool.acquire() as conn:
            peer_rows = await repository.peer_totals(conn, principal.uid, peers)
        if peer_rows:
            rows = _net_in(own_rows, peer_rows)
    items = [_balance_item(contact, currency, int(net), n, name) for contact, currency, net, n, name in rows]
    return {"items": items, "partial": partial}


async def contact_balance(deps: Deps, principal: Principal, contact: str, page: PageParams) -> dict[str, Any]:
    peers, partial = await peers_of(deps, principal)
    async with deps.pool.acquire() as conn:
        rows = await repository.contact_balances(conn, principal.uid, peers, contact)
        history = await repository.list_visible(conn, principal.uid, peers, limit=page.limit + 1, after=_after(page), contact=contact)
    if not rows and not history:
        raise NotFound("No entries with this contact", code="contact_not_found")
    more = len(history) > page.limit
    history = history[: page.limit]
    totals = [_balance_item(r["contact"], r["currency"], int(r["net_minor"]), r["entries"], r["name"]) for r in rows]
    counterparty = totals[0]["counterparty"] if totals else entry_json(history[0], principal.uid)["counterparty"]
    return {
        "contact": contact,
        "counterparty": {"user_id": counterparty["user_id"], "name": counterparty["name"]},
        "totals": [{"currency": t["currency"], "net_amount": t["net_amount"], "direction": t["direction"]} for t in totals],
        "history": [entry_json(r, principal.uid) for r in history],
        "next_cursor": encode_cursor([history[-1]["occurred_on"].isoformat(), str(history[-1]["id"])]) if more and history else None,
        "partial": partial,
    }


CSV_COLUMNS = [
    "id", "kind", "settles_entry_id", "occurred_on", "contact", "counterparty_user_id", "counterparty_name",
    "direction", "amount", "currency", "settled_amount", "remaining_amount", "status", "disputed", "note",
    "due_at", "mirrored", "created_at",
]


async def export_csv(deps: Deps, principal: Principal, filters: ListFilters) -> AsyncIterator[str]:
    """The caller's ledger as CSV (RFC 4180), oldest first, streamed in chunks; amounts are
    exact decimal strings and typed text is neutralised against spreadsheet formulas."""
    filters = filters.checked()
    peers, _ = await peers_of(deps, principal)

    async def generate() -> AsyncIterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        async with deps.pool.acquire() as conn, conn.transaction(readonly=True, isolation="repeatable_read"):
            n = 0
            async for row in repository.iter_visible(conn, principal.uid, peers, **filters.as_kwargs()):
                e = entry_json(row, principal.uid)
                writer.writerow([
                    e["id"], e["kind"], e["settles_entry_id"] or "", e["occurred_on"].isoformat(),
                    domain.csv_safe(e["contact"]), domain.csv_safe(e["counterparty"]["user_id"] or ""),
                    domain.csv_safe(e["counterparty"]["name"] or ""), e["direction"], e["amount"], e["currency"],
                    e["settled_amount"], e["remaining_amount"], e["status"], str(e["disputed"]).lower(),
                    domain.csv_safe(e["note"] or ""), e["due_at"].isoformat() if e["due_at"] else "",
                    str(e["mirrored"]).lower(), e["created_at"].isoformat(),
                ])
                n += 1
                if n % 500 == 0:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
        yield buffer.getvalue()

    return generate()


# --- change -----------------------------------------------------------------------------


async def _owned_or_explain(conn: asyncpg.Connection, deps: Deps, principal: Principal, eid: uuid.UUID, peers: list[str] | None = None) -> asyncpg.Record:
    """The caller's own entry, locked. A friend's entry the caller can see is 403 (only its
    owner edits it); anything else is 404, never revealing whether it exists."""
    row = await repository.get_owned(conn, principal.uid, eid, for_update=True)
    if row is not None:
        return row
    if peers is None:
        peers, _ = await peers_of(deps, principal)
    if peers and await repository.get_visible(conn, principal.uid, peers, eid) is not None:
        raise Forbidden("Only the person who recorded this entry can change it", code="not_entry_owner")
    raise _not_found()


@retry_on_conflict
async def update_entry(deps: Deps, principal: Principal, entry_id: str, patch: EntryPatch) -> dict[str, Any]:
    eid = _entry_id(entry_id)
    sent = patch.model_fields_set
    if not sent:
        raise BadRequest("Nothing to change", code="empty_patch")
    for field in ("amount", "currency", "counterparty_name", "occurred_on"):
        if field in sent and getattr(patch, field) is None:
            raise BadRequest(f"{field} cannot be null", code="validation_error", errors=[{"field": field, "message": "cannot be null"}])
    if patch.currency is not None:
        try:
            domain.check_currency(patch.currency)
        except domain.MoneyError as exc:
            raise _money_problem(exc) from None
    async with deps.pool.acquire() as conn, conn.transaction():
        # Friends is asked only when the entry is not the caller's (403 vs 404).
        row = await _owned_or_explain(conn, deps, principal, eid)
        if row["kind"] != "entry":
            raise Conflict("A settlement is not edited; undo it and settle again", code="settlement_immutable")
        changes: dict[str, Any] = {}
        currency = domain.check_currency(patch.currency) if patch.currency is not None else row["currency"]
        if currency != row["currency"]:
            if row["settled_minor"] > 0:
                raise Conflict("The currency of a partly settled entry cannot change", code="entry_has_settlements")
            changes["currency"] = currency
        if "amount" in sent or "currency" in changes:
            try:
                amount_minor = domain.parse_amount(patch.amount if "amount" in sent else domain.format_minor(row["amount_minor"], row["currency"]), currency)
            except domain.MoneyError as exc:
                raise _money_problem(exc) from None
            if amount_minor < row["settled_minor"]:
                raise Conflict("The amount cannot go below what has been settled", code="amount_below_settled")
            changes["amount_minor"] = amount_minor
            changes["status"] = "settled" if amount_minor == row["settled_minor"] else "open"
        if "counterparty_name" in sent:
            name = domain.normalize_name(patch.counterparty_name or "")
            changes["counterparty_name"] = name
            if row["counterparty_user_id"] is None:
                changes["contact_key"] = domain.name_contact(name)
        for field in ("note", "occurred_on", "due_at"):
            if field in sent:
                changes[field] = getattr(patch, field)
        new_key = (changes.get("contact_key", row["contact_key"]), changes.get("currency", row["currency"]))
        if new_key != (row["contact_key"], row["currency"]):
            await repository.lock_totals(conn, principal.uid, [(row["contact_key"], row["currency"]), new_key])
        updated = await repository.update_entry(conn, eid, changes)
        if "counterparty_name" in changes:
            await repository.rename_settlements(conn, eid, updated["counterparty_name"], updated["contact_key"])
        await _audit(conn, principal.uid, principal.uid, "entry.updated", eid, sorted(sent))
        await repository.add_outbox(conn, "ledger.entry_updated", _event_payload(updated, fields=sorted(sent)))
    await outbox.flush_quietly(deps.pool, deps.redis)
    if "due_at" in sent and updated["due_at"] != row["due_at"]:
        await _cancel_reminder(deps, principal, row["reminder_id"])
        if updated["due_at"] is not None:
            updated = await _make_reminder(deps, principal, updated)
        elif row["reminder_id"]:
            async with deps.pool.acquire() as conn:
                updated = await repository.set_reminder_result(conn, principal.uid, eid, None, None) or updated
    return entry_json(updated, principal.uid)


@retry_on_conflict
async def delete_entry(deps: Deps, principal: Principal, entry_id: str) -> None:
    eid = _entry_id(entry_id)
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await _owned_or_explain(conn, deps, principal, eid)
        if row["kind"] != "entry":
            raise Conflict("Undo a settlement instead of deleting it", code="settlement_immutable")
        await repository.delete_owned(conn, principal.uid, eid)
        await _audit(conn, principal.uid, principal.uid, "entry.deleted", eid)
        await repository.add_outbox(conn, "ledger.entry_deleted", _event_payload(row))
    await outbox.flush_quietly(deps.pool, deps.redis)
    await _cancel_reminder(deps, principal, row["reminder_id"])


@retry_on_conflict
async def settle(deps: Deps, principal: Principal, entry_id: str, body: SettleRequest) -> dict[str, Any]:
    """Pays an entry down, fully or in part, as a settlement entry of its own. Either side
    of a shared entry may settle it; both see the result."""
    eid = _entry_id(entry_id)
    peers, _ = await peers_of(deps, principal)
    async with deps.pool.acquire() as conn, conn.transaction():
        entry = await repository.get_visible(conn, principal.uid, peers, eid, for_update=True)
        if entry is None:
            raise _not_found()
        if entry["kind"] != "entry":
            raise Conflict("A settlement cannot itself be settled", code="not_settleable")
        requested = None
        if body.amount is not None:
            try:
                requested = domain.parse_amount(body.amount, entry["currency"])
            except domain.MoneyError as exc:
                raise _money_problem(exc) from None
        remaining = entry["amount_minor"] - entry["settled_minor"]
        try:
            take = domain.check_settle_amount(remaining, requested)
        except ValueError as exc:
            if str(exc) == "already_settled":
                raise Conflict("This entry is already settled", code="already_settled") from None
            raise BadRequest(
                f"amount: more than the {domain.format_minor(remaining, entry['currency'])} {entry['currency']} that remains",
                code="exceeds_remaining",
                errors=[{"field": "amount", "message": "must not exceed the remaining amount"}],
            ) from None
        settlement = await repository.insert_entry(
            conn,
            owner_id=entry["owner_id"],
            kind="settlement",
            settles_entry_id=eid,
            counterparty_user_id=entry["counterparty_user_id"],
            counterparty_name=entry["counterparty_name"],
            counterparty_phone_hash=entry["counterparty_phone_hash"],
            contact_key=entry["contact_key"],
            direction=domain.settlement_direction(entry["direction"]),
            currency=entry["currency"],
            amount_minor=take,
            status="applied",
            note=body.note,
            occurred_on=body.occurred_on or _today(),
            created_by=principal.uid,
        )
        settled = entry["settled_minor"] + take
        updated = await repository.update_entry(
            conn, eid, {"settled_minor": settled, "status": "settled" if settled == entry["amount_minor"] else "open"}
        )
        await _audit(conn, principal.uid, entry["owner_id"], "entry.settled", eid)
        await repository.add_outbox(conn, "ledger.entry_settled", _event_payload(settlement, settled_by=principal.uid, entry_status=updated["status"]))
    await outbox.flush_quietly(deps.pool, deps.redis)
    metrics.SETTLEMENTS.labels("full" if updated["status"] == "settled" else "partial").inc()
    if updated["status"] == "settled" and updated["owner_id"] == principal.uid:
        # Paid in full: the owner's "they owe you" reminder has nothing left to remind of.
        await _cancel_reminder(deps, principal, updated["reminder_id"])
    return {"entry": entry_json(updated, principal.uid), "settlement": entry_json(settlement, principal.uid)}


@retry_on_conflict
async def undo_settlement(deps: Deps, principal: Principal, settlement_id: str) -> dict[str, Any]:
    sid = _entry_id(settlement_id)
    peers, _ = await peers_of(deps, principal)
    async with deps.pool.acquire() as conn, conn.transaction():
        probe = await repository.get_visible(conn, principal.uid, peers, sid)
        if probe is None:
            raise _not_found()
        if probe["kind"] != "settlement":
            raise Conflict("Only a settlement can be undone", code="not_a_settlement")
        # Lock order everywhere: the entry, then its settlement (as settle does).
        entry = await repository.lock_entry_of(conn, probe["owner_id"], probe["settles_entry_id"])
        settlement = await repository.get_visible(conn, principal.uid, peers, sid, for_update=True)
        if entry is None or settlement is None:
            raise _not_found()
        if settlement["status"] == "voided":
            raise Conflict("This settlement was already undone", code="already_undone")
        voided = await repository.update_entry(
            conn, sid, {"status": "voided", "voided_by": principal.uid, "voided_at": datetime.now(UTC)}
        )
        settled = entry["settled_minor"] - settlement["amount_minor"]
        updated = await repository.update_entry(conn, entry["id"], {"settled_minor": settled, "status": "open"})
        await _audit(conn, principal.uid, entry["owner_id"], "settlement.undone", sid)
        await repository.add_outbox(conn, "ledger.settlement_undone", _event_payload(voided, undone_by=principal.uid))
    await outbox.flush_quietly(deps.pool, deps.redis)
    metrics.UNDONE.inc()
    return {"entry": entry_json(updated, principal.uid), "settlement": entry_json(voided, principal.uid)}


@retry_on_conflict
async def dispute(deps: Deps, principal: Principal, entry_id: str, body: DisputeRequest | None) -> dict[str, Any]:
    """The other side of a shared entry objects to it (or, with ``body`` None, withdraws
    the objection). The owner cannot dispute their own entry."""
    eid = _entry_id(entry_id)
    peers, _ = await peers_of(deps, principal)
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await repository.get_visible(conn, principal.uid, peers, eid, for_update=True)
        if row is None:
            raise _not_found()
        if row["owner_id"] == principal.uid:
            raise Forbidden("Only the other side of a shared entry can dispute it", code="cannot_dispute_own_entry")
        if body is not None:
            changes = {"disputed": True, "dispute_reason": body.reason, "disputed_by": principal.uid, "disputed_at": datetime.now(UTC)}
            action = "entry.disputed"
            metrics.DISPUTES.inc()
        else:
            changes = {"disputed": False, "dispute_reason": None, "disputed_by": None, "disputed_at": None}
            action = "entry.dispute_withdrawn"
        updated = await repository.update_entry(conn, eid, changes)
        await _audit(conn, principal.uid, row["owner_id"], action, eid)
        await repository.add_outbox(conn, "ledger." + action.split(".")[1], _event_payload(updated, by=principal.uid))
    await outbox.flush_quietly(deps.pool, deps.redis)
    return entry_json(updated, principal.uid)


# --- erasure ----------------------------------------------------------------------------


@retry_on_conflict
async def erase_user(pool: asyncpg.Pool, uid: str) -> dict[str, int]:
    """``user.deleted``: the user's own ledger goes (settlements with it); friends' entries
    about them stay in the friends' ledgers but are no longer linked (unmirrored): the
    contact becomes the name the friend gave, or "Deleted user". Safe to repeat."""
    async with pool.acquire() as conn, conn.transaction():
        deleted = await repository.delete_owner_entries(conn, uid)
        unmirrored = 0
        for name in await repository.names_recorded_for(conn, uid):
            new_name = name or "Deleted user"
            unmirrored += await repository.unmirror(conn, uid, name, new_name, domain.name_contact(new_name))
        await repository.forget_actor(conn, uid)
    return {"deleted": deleted, "unmirrored": unmirrored}
