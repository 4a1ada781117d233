"""All SQL of the ledger, through asyncpg, one function per query.

This is the one authorization enforcement point: every read is scoped to what the viewer
may see — the entries they own, plus the entries whose counterparty they are and whose
owner is one of their ``peers`` (friends the friends service says share ledgers with
them). Every write of an entry's content is scoped to its owner.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import asyncpg

ENTRY_COLUMNS = """
    e.id, e.owner_id, e.kind, e.settles_entry_id, e.counterparty_user_id, e.counterparty_name,
    e.counterparty_phone_hash, e.contact_key, e.direction, e.currency, e.amount_minor,
    e.settled_minor, e.status, e.note, e.occurred_on, e.due_at, e.reminder_id, e.reminder_error,
    e.disputed, e.dispute_reason, e.disputed_by, e.created_by, e.created_at, e.updated_at, e.voided_at
"""

# Rows $1 (viewer) may see, given $2 (peers: owners sharing their ledger with the viewer).
VISIBLE = "(e.owner_id = $1 OR (e.counterparty_user_id = $1 AND e.owner_id = ANY($2::text[])))"


async def insert_entry(conn: asyncpg.Connection, **f: Any) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""
        INSERT INTO ledger.entries AS e (id, owner_id, kind, settles_entry_id, counterparty_user_id,
            counterparty_name, counterparty_phone_hash, contact_key, direction, currency, amount_minor,
            status, note, occurred_on, due_at, created_by)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
        RETURNING {ENTRY_COLUMNS}
        """,
        f.get("id") or uuid.uuid4(), f["owner_id"], f.get("kind", "entry"), f.get("settles_entry_id"),
        f.get("counterparty_user_id"), f.get("counterparty_name"), f.get("counterparty_phone_hash"),
        f["contact_key"], f["direction"], f["currency"], f["amount_minor"], f["status"], f.get("note"),
        f["occurred_on"], f.get("due_at"), f["created_by"],
    )


async def get_visible(
    conn: asyncpg.Connection, viewer: str, peers: list[str], entry_id: uuid.UUID, *, for_update: bool = False
) -> asyncpg.Record | None:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(
        f"SELECT {ENTRY_COLUMNS} FROM ledger.entries e WHERE e.id = $3 AND {VISIBLE}{lock}", viewer, peers, entry_id
    )


async def get_owned(conn: asyncpg.Connection, owner: str, entry_id: uuid.UUID, *, for_update: bool = False) -> asyncpg.Record | None:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(
        f"SELECT {ENTRY_COLUMNS} FROM ledger.entries e WHERE e.id = $2 AND e.owner_id = $1{lock}", owner, entry_id
    )


async def lock_entry_of(conn: asyncpg.Connection, owner: str, entry_id: uuid.UUID) -> asyncpg.Record | None:
    """The entry a settlement pays down, locked; always checked against the same owner."""
    return await get_owned(conn, owner, entry_id, for_update=True)


def _filters(
    args: list[Any],
    *,
    contact: str | None,
    status: str | None,
    currency: str | None,
    date_from: date | None,
    date_to: date | None,
    kind: str | None,
) -> str:
    clauses = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if contact is not None:
        clauses.append(
            f"(CASE WHEN e.owner_id = $1 THEN e.contact_key ELSE 'user:' || e.owner_id END) = {arg(contact)}"
        )
    if status is not None:
        clauses.append(f"e.status = {arg(status)}")
    if currency is not None:
        clauses.append(f"e.currency = {arg(currency)}")
    if date_from is not None:
        clauses.append(f"e.occurred_on >= {arg(date_from)}")
    if date_to is not None:
        clauses.append(f"e.occurred_on <= {arg(date_to)}")
    if kind is not None:
        clauses.append(f"e.kind = {arg(kind)}")
    return "".join(" AND " + c for c in clauses)


async def list_visible(
    conn: asyncpg.Connection,
    viewer: str,
    peers: list[str],
    *,
    limit: int,
    after: tuple[date, uuid.UUID] | None = None,
    contact: str | None = None,
    status: str | None = None,
    currency: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    kind: str | None = None,
) -> list[asyncpg.Record]:
    """Newest first by (occurred_on, id); keyset pagination after the last row served."""
    args: list[Any] = [viewer, peers]
    where = _filters(args, contact=contact, status=status, currency=currency, date_from=date_from, date_to=date_to, kind=kind)
    if after is not None:
        args += [after[0], after[1]]
        where += f" AND (e.occurred_on, e.id) < (${len(args) - 1}, ${len(args)})"
    args.append(limit)
    return await conn.fetch(
        f"SELECT {ENTRY_COLUMNS} FROM ledger.entries e WHERE {VISIBLE}{where} "
        f"ORDER BY e.occurred_on DESC, e.id DESC LIMIT ${len(args)}",
        *args,
    )


async def iter_visible(conn: asyncpg.Connection, viewer: str, peers: list[str], **filters: Any):
    """All visible rows for the CSV export, oldest first, through a server-side cursor
    (call inside a transaction)."""
    args: list[Any] = [viewer, peers]
    where = _filters(args, **filters)
    async for row in conn.cursor(
        f"SELECT {ENTRY_COLUMNS} FROM ledger.entries e WHERE {VISIBLE}{where} ORDER BY e.occurred_on, e.created_at, e.id",
        *args,
        prefetch=500,
    ):
        yield row


# Net per (contact, currency) as the viewer sees it, from ledger.totals (kept exact by a
# trigger in every writer's transaction; ``aggregate_balances`` recomputes the same from
# the entries). Own totals keep their sign; a peer's totals about the viewer count with
# the opposite sign under 'user:<peer>'. Voided settlements count for nothing.
_BALANCES = """
    SELECT contact, currency, sum(net) AS net_minor, sum(n)::bigint AS entries, max(name) AS name
    FROM (
        SELECT t.contact_key AS contact, t.currency, t.net_minor AS net, t.entries AS n, t.name
        FROM ledger.totals t
        WHERE t.owner_id = $1 AND t.entries > 0 {own_filter}
        UNION ALL
        SELECT 'user:' || t.owner_id, t.currency, -t.net_minor, t.entries, NULL
        FROM ledger.totals t
        WHERE t.contact_key = 'user:' || $1 AND t.owner_id = ANY($2::text[]) AND t.entries > 0 {peer_filter}
    ) x
    GROUP BY contact, currency
    ORDER BY contact, currency
"""

# The same answer straight from the entries (GROUP BY): the definition the totals table
# must always equal (tests and the benchmark compare the two).
AGGREGATE_BALANCES = """
    SELECT contact, currency, sum(amount) AS net_minor, sum(n)::bigint AS entries, max(name) AS name
    FROM (
        SELECT e.contact_key AS contact, e.currency, sum(e.signed_minor) AS amount,
               count(*) AS n, max(e.counterparty_name) AS name
        FROM ledger.entries e
        WHERE e.owner_id = $1 AND e.status <> 'voided'
        GROUP BY 1, 2
        UNION ALL
        SELECT 'user:' || e.owner_id, e.currency, -sum(e.signed_minor), count(*), NULL
        FROM ledger.entries e
        WHERE e.counterparty_user_id = $1 AND e.owner_id = ANY($2::text[]) AND e.status <> 'voided'
        GROUP BY e.owner_id, e.currency
    ) t
    GROUP BY contact, currency
    ORDER BY contact, currency
"""


# Rows of (contact, currency, net_minor, entries, name), in this column order. net_minor
# comes as the numeric's exact decimal text: Python's int() reads it faster than asyncpg
# builds a Decimal, which adds up over the ~1,500 rows of a large ledger. Own rows come
# in code-point order (COLLATE "C", as Python compares strings), so the service needs no
# sort of its own.
OWN_TOTALS = """
    SELECT contact_key AS contact, currency, net_minor::text AS net_minor, entries, name
    FROM ledger.totals WHERE owner_id = $1 AND entries > 0
    ORDER BY contact_key COLLATE "C", currency COLLATE "C"
"""
PEER_TOTALS = """
    SELECT 'user:' || owner_id AS contact, currency, (-net_minor)::text AS net_minor, entries, NULL AS name
    FROM ledger.totals WHERE contact_key = 'user:' || $1 AND owner_id = ANY($2::text[]) AND entries > 0
"""


async def own_totals(conn: asyncpg.Connection, owner: str) -> list[asyncpg.Record]:
    """The owner's own net per (contact, currency) — independent of any friend — in
    code-point order of (contact, currency)."""
    return await conn.fetch(OWN_TOTALS, owner)


async def peer_totals(conn: asyncpg.Connection, viewer: str, peers: list[str]) -> list[asyncpg.Record]:
    """Peers' totals about the viewer, already turned to the viewer's side."""
    return await conn.fetch(PEER_TOTALS, viewer, peers)


async def balances(conn: asyncpg.Connection, viewer: str, peers: list[str]) -> list[asyncpg.Record]:
    return await conn.fetch(_BALANCES.format(own_filter="", peer_filter=""), viewer, peers)


async def aggregate_balances(conn: asyncpg.Connection, viewer: str, peers: list[str]) -> list[asyncpg.Record]:
    return await conn.fetch(AGGREGATE_BALANCES, viewer, peers)


async def contact_balances(conn: asyncpg.Connection, viewer: str, peers: list[str], contact: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        _BALANCES.format(own_filter="AND t.contact_key = $3", peer_filter="AND 'user:' || t.owner_id = $3"),
        viewer, peers, contact,
    )


async def update_entry(conn: asyncpg.Connection, entry_id: uuid.UUID, changes: dict[str, Any]) -> asyncpg.Record:
    """``changes`` keys are column names chosen by the service, never by the client."""
    allowed = {
        "amount_minor", "currency", "counterparty_name", "counterparty_phone_hash", "contact_key", "note",
        "occurred_on", "due_at", "status", "settled_minor", "reminder_id", "reminder_error", "disputed",
        "dispute_reason", "disputed_by", "disputed_at", "voided_by", "voided_at",
    }
    assert set(changes) <= allowed, set(changes) - allowed
    cols = list(changes)
    sets = ", ".join(f"{c} = ${i + 2}" for i, c in enumerate(cols))
    return await conn.fetchrow(
        f"UPDATE ledger.entries AS e SET {sets}, updated_at = clock_timestamp() WHERE e.id = $1 RETURNING {ENTRY_COLUMNS}",
        entry_id, *[changes[c] for c in cols],
    )


async def lock_totals(conn: asyncpg.Connection, owner: str, keys: list[tuple[str, str]]) -> None:
    """Before a change that moves an entry between totals rows (another currency or
    contact): make sure those rows exist and lock them in one fixed order, so two such
    changes moving in opposite directions queue instead of deadlocking."""
    keys = sorted(set(keys))
    await conn.executemany(
        "INSERT INTO ledger.totals (owner_id, contact_key, currency) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        [(owner, contact, currency) for contact, currency in keys],
    )
    await conn.execute(
        """SELECT 1 FROM ledger.totals t
           JOIN unnest($2::text[], $3::text[]) AS k(contact_key, currency)
             ON t.contact_key = k.contact_key AND t.currency = k.currency::char(3)
           WHERE t.owner_id = $1
           ORDER BY t.contact_key, t.currency
           FOR UPDATE OF t""",
        owner, [k[0] for k in keys], [k[1] for k in keys],
    )


async def rename_settlements(conn: asyncpg.Connection, entry_id: uuid.UUID, name: str, contact_key: str) -> None:
    """Settlements follow their entry to its renamed contact (their totals move with them)."""
    await conn.execute(
        """UPDATE ledger.entries SET counterparty_name = $2, contact_key = $3, updated_at = clock_timestamp()
           WHERE settles_entry_id = $1""",
        entry_id, name, contact_key,
    )


async def set_reminder_result(conn: asyncpg.Connection, owner: str, entry_id: uuid.UUID, reminder_id: str | None, error: str | None) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""UPDATE ledger.entries AS e SET reminder_id = $3, reminder_error = $4, updated_at = clock_timestamp()
            WHERE e.id = $2 AND e.owner_id = $1 RETURNING {ENTRY_COLUMNS}""",
        owner, entry_id, reminder_id, error,
    )


async def delete_owned(conn: asyncpg.Connection, owner: str, entry_id: uuid.UUID) -> int:
    """Deletes an entry and (by cascade) its settlements; returns rows deleted (0 or 1)."""
    result = await conn.execute("DELETE FROM ledger.entries WHERE id = $2 AND owner_id = $1", owner, entry_id)
    return int(result.split()[-1])


async def settlements_of(conn: asyncpg.Connection, entry_id: uuid.UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {ENTRY_COLUMNS} FROM ledger.entries e WHERE e.settles_entry_id = $1 ORDER BY e.created_at", entry_id
    )


async def add_audit(
    conn: asyncpg.Connection, actor: str, subject: str, action: str, entry_id: uuid.UUID | None, fields: list[str], request_id: str | None
) -> None:
    await conn.execute(
        "INSERT INTO ledger.audit_log (actor, subject, action, entry_id, fields, request_id) VALUES ($1, $2, $3, $4, $5, $6)",
        actor, subject, action, entry_id, fields, request_id,
    )


async def add_outbox(conn: asyncpg.Connection, event_type: str, payload: dict[str, Any]) -> int:
    return await conn.fetchval("INSERT INTO ledger.outbox (event_type, payload) VALUES ($1, $2) RETURNING id", event_type, payload)


async def claim_outbox(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, event_type, payload FROM ledger.outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED", limit
    )


async def delete_outbox(conn: asyncpg.Connection, ids: list[int]) -> None:
    await conn.execute("DELETE FROM ledger.outbox WHERE id = ANY($1::bigint[])", ids)


# --- erasure (user.deleted) -------------------------------------------------------------


async def delete_owner_entries(conn: asyncpg.Connection, uid: str) -> int:
    result = await conn.execute("DELETE FROM ledger.entries WHERE owner_id = $1", uid)
    return int(result.split()[-1])


async def names_recorded_for(conn: asyncpg.Connection, uid: str) -> list[str | None]:
    rows = await conn.fetch(
        "SELECT DISTINCT counterparty_name FROM ledger.entries WHERE counterparty_user_id = $1", uid
    )
    return [r["counterparty_name"] for r in rows]


async def unmirror(conn: asyncpg.Connection, uid: str, name: str | None, new_name: str, new_key: str) -> int:
    """Others' entries about a deleted user become entries about a contact known by name."""
    result = await conn.execute(
        """UPDATE ledger.entries SET counterparty_user_id = NULL, counterparty_name = $3, contact_key = $4,
               updated_at = clock_timestamp()
           WHERE counterparty_user_id = $1 AND counterparty_name IS NOT DISTINCT FROM $2""",
        uid, name, new_name, new_key,
    )
    return int(result.split()[-1])


async def forget_actor(conn: asyncpg.Connection, uid: str) -> None:
    await conn.execute("UPDATE ledger.entries SET created_by = NULL WHERE created_by = $1", uid)
    await conn.execute("UPDATE ledger.entries SET voided_by = NULL WHERE voided_by = $1", uid)
    await conn.execute(
        "UPDATE ledger.entries SET disputed = false, dispute_reason = NULL, disputed_by = NULL, disputed_at = NULL WHERE disputed_by = $1",
        uid,
    )
    await conn.execute("DELETE FROM ledger.audit_log WHERE actor = $1 OR subject = $1", uid)
