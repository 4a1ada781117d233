"""All SQL of the reminders service, through asyncpg.

Every query that touches a user's data takes ``uid`` and filters on it, so another user's
reminder is simply not found (404). The only way to another user's reminder is a friend's
grant, (owner, reminder id) pairs from the friends service that ``service.authorize`` and
the list pass in explicitly (``shared``), matched on the owner *and* the id. The
scheduler's queries (claim, fire) run without a caller and are marked as such.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from .domain import search_grams

T = "reminders.reminders"

REMINDER_COLUMNS = (
    "id",
    "uid",
    "title",
    "notes",
    "phrase",
    "source",
    "priority",
    "tags",
    "anchor_local",
    "timezone",
    "tz_mode",
    "rrule",
    "exdates",
    "alarms",
    "status",
    "due_at",
    "next_occurrence_at",
    "next_offset_s",
    "next_fire_at",
    "job_id",
    "job_index",
    "created_by",
)
SEARCHED_COLUMNS = {"title", "notes", "phrase"}  # the texts the ``q`` filter matches
_INSERT = f"INSERT INTO {T} ({', '.join(REMINDER_COLUMNS)}) VALUES ({', '.join(f'${i + 1}' for i in range(len(REMINDER_COLUMNS)))})"


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# ---------------------------------------------------------------- reminders (user-scoped)


async def insert_reminders(
    conn: asyncpg.Connection, rows: list[dict[str, Any]], *, skip_existing_job_items: bool = False
) -> list[asyncpg.Record]:
    """Insert reminders and their search keys (call inside a transaction); returns the stored
    rows. A bulk job's chunk skips items an earlier, interrupted attempt already stored."""
    records = [tuple(row.get(c) for c in REMINDER_COLUMNS) for row in rows]
    if skip_existing_job_items:
        await conn.executemany(
            _INSERT + " ON CONFLICT (job_id, job_index) WHERE job_id IS NOT NULL DO NOTHING", records
        )
    else:
        # COPY: one round trip in the binary format; ~3x faster than executemany for a
        # 1,000-item bulk create.
        await conn.copy_records_to_table(
            "reminders", schema_name="reminders", columns=REMINDER_COLUMNS, records=records
        )
    ids = [row["id"] for row in rows]
    fetched = {r["id"]: r for r in await conn.fetch(f"SELECT * FROM {T} WHERE id = ANY($1::uuid[])", ids)}
    created = [row for row in rows if row["id"] in fetched]  # a skipped job item kept its earlier row
    await conn.copy_records_to_table(
        "reminder_search",
        schema_name="reminders",
        columns=("reminder_id", "grams"),
        records=[(row["id"], search_grams(row["title"], row.get("notes"), row.get("phrase"))) for row in created],
    )
    return [fetched[i] for i in ids if i in fetched]


async def get_reminder(
    conn: asyncpg.Connection, uid: str, reminder_id: uuid.UUID, *, for_update: bool = False
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT * FROM {T} WHERE id = $1 AND uid = $2" + (" FOR UPDATE" if for_update else ""), reminder_id, uid
    )


async def get_shared_reminder(
    conn: asyncpg.Connection, reminder_id: uuid.UUID, owners: list[str], *, for_update: bool = False
) -> asyncpg.Record | None:
    """The reminder if one of ``owners`` (those whose grant of this id the caller holds)
    really owns it: a grant of someone else's id finds nothing."""
    return await conn.fetchrow(
        f"SELECT * FROM {T} WHERE id = $1 AND uid = ANY($2::text[])" + (" FOR UPDATE" if for_update else ""),
        reminder_id,
        owners,
    )


def _filters(
    uid: str,
    status: str | None,
    due_from: datetime | None,
    due_to: datetime | None,
    tag: str | None,
    q: str | None,
    ids: list[uuid.UUID] | None = None,
    *,
    own: bool = True,
    shared: list[tuple[str, uuid.UUID]] | None = None,
) -> tuple[list[str], list[Any]]:
    """WHERE clauses: the caller's rows (``own``) and/or the granted (owner, id) pairs."""
    args: list[Any] = [uid]
    if not shared:
        where = ["uid = $1" if own else "(uid = $1 AND false)"]
    else:
        args += [[o for o, _ in shared], [i for _, i in shared]]
        # id = ANY first: the primary key finds the few granted rows (a BitmapOr with the
        # uid index), the pair test then keeps only those their grant's owner owns.
        granted = "(id = ANY($3::uuid[]) AND (uid, id) IN (SELECT * FROM unnest($2::text[], $3::uuid[])))"
        where = [f"(uid = $1 OR {granted})" if own else f"(uid <> $1 AND {granted})"]

    def add(clause: str, value: Any) -> None:
        args.append(value)
        where.append(clause.replace("?", f"${len(args)}"))

    if status:
        add("status = ?", status)
    if due_from:
        add("due_at >= ?", due_from)
    if due_to:
        add("due_at < ?", due_to)
    if tag:
        add("tags @> ARRAY[?::text]", tag)
    if q:
        keys = search_grams(q)
        if keys:
            # Index-served necessary condition (domain.search_grams); the ILIKE below is the
            # exact test. A query shorter than three characters has no key to look up.
            add("id IN (SELECT reminder_id FROM reminders.reminder_search WHERE grams @> ?::text[])", keys)
        pattern = "%" + _escape_like(q) + "%"
        add("(title ILIKE ? OR coalesce(notes, '') ILIKE ? OR coalesce(phrase, '') ILIKE ?)", pattern)
    if ids is not None:
        add("id = ANY(?::uuid[])", ids)
    return where, args


async def list_reminders(
    conn: asyncpg.Connection,
    uid: str,
    *,
    status: str | None,
    due_from: datetime | None,
    due_to: datetime | None,
    tag: str | None,
    q: str | None,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
    own: bool = True,
    shared: list[tuple[str, uuid.UUID]] | None = None,
) -> list[asyncpg.Record]:
    """The caller's reminders (``own``) and the granted ones (``shared``: (owner, id)),
    in one (due_at, id) order, keyset-paginated."""
    where, args = _filters(uid, status, due_from, due_to, tag, q, own=own, shared=shared)
    if after is not None:
        args.extend(after)
        where.append(f"(due_at, id) > (${len(args) - 1}, ${len(args)})")
    args.append(limit)
    return await conn.fetch(
        f"SELECT * FROM {T} WHERE {' AND '.join(where)} ORDER BY due_at, id LIMIT ${len(args)}", *args
    )


async def update_reminder(
    conn: asyncpg.Connection, uid: str, reminder_id: uuid.UUID, fields: dict[str, Any], *, reschedule: bool
) -> asyncpg.Record | None:
    """Update columns; ``reschedule`` bumps the version and drops any worker's lease so the
    old occurrence can never fire and the new schedule is claimed afresh."""
    sets = []
    args: list[Any] = [reminder_id, uid]
    for column, value in fields.items():
        args.append(value)
        sets.append(f"{column} = ${len(args)}")
    sets.append("updated_at = now()")
    if reschedule:
        sets += ["version = version + 1", "lease_owner = NULL", "lease_until = NULL"]
    row = await conn.fetchrow(f"UPDATE {T} SET {', '.join(sets)} WHERE id = $1 AND uid = $2 RETURNING *", *args)
    if row is not None and fields.keys() & SEARCHED_COLUMNS:
        await conn.execute(
            "INSERT INTO reminders.reminder_search (reminder_id, grams) VALUES ($1, $2) "
            "ON CONFLICT (reminder_id) DO UPDATE SET grams = excluded.grams",
            reminder_id,
            search_grams(row["title"], row["notes"], row["phrase"]),
        )
    return row


async def delete_reminder(conn: asyncpg.Connection, uid: str, reminder_id: uuid.UUID) -> bool:
    return (
        await conn.fetchval(f"DELETE FROM {T} WHERE id = $1 AND uid = $2 RETURNING true", reminder_id, uid) is not None
    )


async def cancel_matching(
    conn: asyncpg.Connection,
    uid: str,
    *,
    ids: list[uuid.UUID] | None,
    due_from: datetime | None,
    due_to: datetime | None,
    tag: str | None,
    q: str | None,
) -> int:
    where, args = _filters(uid, None, due_from, due_to, tag, q, ids)
    where.append("status IN ('scheduled', 'fired')")
    result = await conn.execute(
        f"UPDATE {T} SET status = 'cancelled', cancelled_at = now(), updated_at = now(), next_fire_at = NULL, "
        f"next_occurrence_at = NULL, next_offset_s = NULL, version = version + 1, lease_owner = NULL, lease_until = NULL "
        f"WHERE {' AND '.join(where)}",
        *args,
    )
    return int(result.split()[-1])


# ---------------------------------------------------------------- deliveries (user-scoped)


async def list_deliveries(
    conn: asyncpg.Connection, uid: str, *, limit: int, before_seq: int | None
) -> list[asyncpg.Record]:
    if before_seq is None:
        return await conn.fetch(
            "SELECT * FROM reminders.deliveries WHERE uid = $1 ORDER BY seq DESC LIMIT $2", uid, limit
        )
    return await conn.fetch(
        "SELECT * FROM reminders.deliveries WHERE uid = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
        uid,
        before_seq,
        limit,
    )


async def deliveries_after(
    conn: asyncpg.Connection | asyncpg.Pool, uid: str, seq: int, limit: int = 500
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM reminders.deliveries WHERE uid = $1 AND seq > $2 ORDER BY seq LIMIT $3", uid, seq, limit
    )


async def last_seq(conn: asyncpg.Connection | asyncpg.Pool, uid: str) -> int:
    return await conn.fetchval("SELECT coalesce((SELECT seq FROM reminders.user_sequences WHERE uid = $1), 0)", uid)


# ---------------------------------------------------------------- jobs (user-scoped reads)


async def insert_job(
    conn: asyncpg.Connection,
    job_id: uuid.UUID,
    uid: str,
    kind: str,
    total: int,
    payload: Any,
    timezone_default: str | None,
) -> asyncpg.Record:
    return await conn.fetchrow(
        "INSERT INTO reminders.jobs (id, uid, kind, total, payload, timezone_default) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
        job_id,
        uid,
        kind,
        total,
        payload,
        timezone_default,
    )


async def get_job(conn: asyncpg.Connection, uid: str, job_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, uid, kind, status, total, processed, succeeded, failures, created_at, finished_at "
        "FROM reminders.jobs WHERE id = $1 AND uid = $2",
        job_id,
        uid,
    )


# ---------------------------------------------------------------- scheduler (no caller: system queries)


async def claim_due(
    conn: asyncpg.Connection, worker: str, window_s: float, lease_s: float, batch: int
) -> list[asyncpg.Record]:
    """Lease the reminders that fire within the look-ahead window and are not leased by a
    live worker. SKIP LOCKED: two workers never wait on, nor both take, the same row."""
    return await conn.fetch(
        f"""
        UPDATE {T} r SET lease_owner = $1, lease_until = now() + make_interval(secs => $3)
        FROM (
            SELECT id FROM {T}
            WHERE status = 'scheduled' AND next_fire_at IS NOT NULL
              AND next_fire_at <= now() + make_interval(secs => $2)
              AND (lease_until IS NULL OR lease_until < now())
            ORDER BY next_fire_at
            LIMIT $4
            FOR UPDATE SKIP LOCKED
        ) due
        WHERE r.id = due.id
        RETURNING r.id, r.uid, r.next_fire_at, r.version
        """,
        worker,
        window_s,
        lease_s,
        batch,
    )


async def renew_leases(conn: asyncpg.Connection, worker: str, lease_s: float) -> int:
    result = await conn.execute(
        f"UPDATE {T} SET lease_until = now() + make_interval(secs => $2) WHERE lease_owner = $1 AND status = 'scheduled'",
        worker,
        lease_s,
    )
    return int(result.split()[-1])


async def release_leases(conn: asyncpg.Connection, worker: str) -> None:
    await conn.execute(f"UPDATE {T} SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1", worker)


async def lock_for_fire(conn: asyncpg.Connection, reminder_id: uuid.UUID) -> asyncpg.Record | None:
    """Lock the reminder and tell whether its pending (occurrence, offset) was delivered."""
    return await conn.fetchrow(
        f"""
        SELECT r.*, EXISTS (
            SELECT 1 FROM reminders.deliveries d
            WHERE d.reminder_id = r.id AND d.occurrence_at = r.next_occurrence_at AND d.offset_s = r.next_offset_s
        ) AS already_delivered
        FROM {T} r WHERE r.id = $1 FOR UPDATE OF r
        """,
        reminder_id,
    )


async def insert_delivery(conn: asyncpg.Connection, row: dict[str, Any]) -> asyncpg.Record:
    """Take the user's next sequence number, write the delivery and its ``reminder.fired``
    outbox event, in one statement (no extra round trip on the firing path).

    The sequence row lock is held until commit, so a user's sequence numbers become visible
    in order and without gaps: the SSE ``id`` can resume exactly. The unique
    (reminder, occurrence, offset) key is the last line of defence against a double fire.
    The event commits with the delivery, so a worker that dies after the commit loses
    nothing: any relay publishes it later."""
    return await conn.fetchrow(
        """
        WITH s AS (
            INSERT INTO reminders.user_sequences (uid, seq) VALUES ($2, 1)
            ON CONFLICT (uid) DO UPDATE SET seq = reminders.user_sequences.seq + 1 RETURNING seq
        ),
        d AS (
            INSERT INTO reminders.deliveries
                (id, uid, seq, reminder_id, occurrence_at, offset_s, fire_at, title, priority, channels, push_pending,
                 worker)
            SELECT $1, $2, s.seq, $3, $4, $5, $6, $7, $8, $9, $10, $11 FROM s
            RETURNING *
        ),
        e AS (
            INSERT INTO reminders.outbox (event_type, payload)
            SELECT 'reminder.fired', jsonb_build_object(
                'uid', d.uid, 'reminder_id', d.reminder_id::text, 'occurrence_at', $12::text,
                'offset_s', d.offset_s, 'delivery_id', d.id::text, 'seq', d.seq)
            FROM d
        )
        SELECT * FROM d
        """,
        row["id"],
        row["uid"],
        row["reminder_id"],
        row["occurrence_at"],
        row["offset_s"],
        row["fire_at"],
        row["title"],
        row["priority"],
        row["channels"],
        row["push_pending"],
        row["worker"],
        row["occurrence_at"].isoformat(),  # the payload's format from before the outbox
    )


async def advance(
    conn: asyncpg.Connection,
    reminder_id: uuid.UUID,
    *,
    status: str,
    due_at: datetime,
    next_occurrence_at: datetime | None,
    next_offset_s: int | None,
    next_fire_at: datetime | None,
    fired: tuple[datetime, datetime] | None,
    held: bool = False,
    keep_lease: tuple[str, float] | None = None,
) -> None:
    """Move the reminder to its next fire; the lease is dropped (any worker claims the next
    fire) unless ``keep_lease`` = (worker, seconds) keeps it with the worker that fired."""
    await conn.execute(
        f"""
        UPDATE {T} SET status = $2, due_at = $3, next_occurrence_at = $4, next_offset_s = $5, next_fire_at = $6,
            held_for_quiet_hours = $7,
            last_occurrence_at = coalesce($8, last_occurrence_at), last_fired_at = coalesce($9, last_fired_at),
            fired_count = fired_count + (CASE WHEN $8::timestamptz IS NULL THEN 0 ELSE 1 END),
            version = version + 1, lease_owner = $10,
            lease_until = CASE WHEN $10::text IS NULL THEN NULL ELSE now() + make_interval(secs => $11) END,
            updated_at = now()
        WHERE id = $1
        """,
        reminder_id,
        status,
        due_at,
        next_occurrence_at,
        next_offset_s,
        next_fire_at,
        held,
        fired[0] if fired else None,
        fired[1] if fired else None,
        keep_lease[0] if keep_lease else None,
        float(keep_lease[1]) if keep_lease else 0.0,
    )


async def set_channel_status(
    conn: asyncpg.Connection | asyncpg.Pool,
    delivery_id: uuid.UUID,
    channel: str,
    status: str,
    *,
    push_pending: bool | None = None,
) -> None:
    await conn.execute(
        "UPDATE reminders.deliveries SET channels = channels || jsonb_build_object($2::text, $3::text), "
        "push_pending = coalesce($4, push_pending) "
        "WHERE id = $1",
        delivery_id,
        channel,
        status,
        push_pending,
    )


async def claim_stale_pushes(
    conn: asyncpg.Connection, older_than_s: float, max_attempts: int, batch: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        """
        UPDATE reminders.deliveries d SET push_attempts = d.push_attempts + 1
        FROM (SELECT id FROM reminders.deliveries
              WHERE push_pending AND delivered_at < now() - make_interval(secs => $1) AND push_attempts < $2
              ORDER BY delivered_at LIMIT $3 FOR UPDATE SKIP LOCKED) s
        WHERE d.id = s.id RETURNING d.*
        """,
        older_than_s,
        max_attempts,
        batch,
    )


async def floating_reminders(conn: asyncpg.Connection, uid: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT * FROM {T} WHERE uid = $1 AND tz_mode = 'floating' AND status IN ('scheduled', 'fired') FOR UPDATE",
        uid,
    )


async def erase_user(conn: asyncpg.Connection, uid: str) -> int:
    # Reminders the user created for friends stay the friends' own; only the creator's id goes.
    await conn.execute(f"UPDATE {T} SET created_by = NULL WHERE created_by = $1", uid)
    await conn.execute("DELETE FROM reminders.deliveries WHERE uid = $1", uid)
    await conn.execute("DELETE FROM reminders.jobs WHERE uid = $1", uid)
    await conn.execute("DELETE FROM reminders.user_sequences WHERE uid = $1", uid)
    result = await conn.execute(f"DELETE FROM {T} WHERE uid = $1", uid)
    return int(result.split()[-1])


async def claim_job(conn: asyncpg.Connection, worker: str, lease_s: float) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """
        UPDATE reminders.jobs j SET status = 'running', lease_owner = $1, lease_until = now() + make_interval(secs => $2),
            updated_at = now()
        FROM (SELECT id FROM reminders.jobs
              WHERE status IN ('queued', 'running') AND (lease_until IS NULL OR lease_until < now())
              ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED) s
        WHERE j.id = s.id RETURNING j.*
        """,
        worker,
        lease_s,
    )


async def job_progress(
    conn: asyncpg.Connection,
    job_id: uuid.UUID,
    worker: str,
    lease_s: float,
    processed: int,
    succeeded: int,
    failures: list[dict[str, Any]],
    done: bool,
) -> None:
    await conn.execute(
        """
        UPDATE reminders.jobs SET processed = $3, succeeded = $4, failures = $5, updated_at = now(),
            lease_until = now() + make_interval(secs => $6),
            status = CASE WHEN $7 THEN 'succeeded' ELSE status END,
            finished_at = CASE WHEN $7 THEN now() ELSE NULL END,
            payload = CASE WHEN $7 THEN '[]'::jsonb ELSE payload END
        WHERE id = $1 AND lease_owner = $2
        """,
        job_id,
        worker,
        processed,
        succeeded,
        failures,
        lease_s,
        done,
    )


# ---------------------------------------------------------------- outbox (system)

# One relay at a time publishes (API processes and workers all relay), so the stream gets
# the events in outbox id order: a reminder's created/updated/deleted arrive in that order.
_OUTBOX_LOCK = "SELECT pg_advisory_xact_lock(hashtext('reminders.outbox'))"


async def add_outbox(conn: asyncpg.Connection, event_type: str, payload: dict[str, Any]) -> None:
    await conn.execute("INSERT INTO reminders.outbox (event_type, payload) VALUES ($1, $2)", event_type, payload)


async def claim_outbox(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    # Two statements on purpose: the SELECT's snapshot must be taken after the lock is held,
    # or it could still see rows the previous holder published and deleted.
    await conn.execute(_OUTBOX_LOCK)
    return await conn.fetch("SELECT id, event_type, payload FROM reminders.outbox ORDER BY id LIMIT $1", limit)


async def delete_outbox(conn: asyncpg.Connection, ids: list[int]) -> None:
    await conn.execute("DELETE FROM reminders.outbox WHERE id = ANY($1::bigint[])", ids)
