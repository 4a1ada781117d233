"""All SQL of the calendar service. Every query a user's request reaches is scoped by
``user_id``: another user's connection is simply not found (404)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

CONN_COLS = """id, user_id, provider, status, display_name, server_url, principal_url, username,
    import_mode, poll_interval_s, next_sync_at, failures, last_error, last_sync_at, calendars_checked_at, created_at, updated_at"""


# ---------------------------------------------------------------- connections

async def insert_connection(conn: asyncpg.Connection, row: dict[str, Any]) -> asyncpg.Record:
    cols = list(row)
    return await conn.fetchrow(
        f"INSERT INTO calendar.connections ({', '.join(cols)}) VALUES ({', '.join(f'${i + 1}' for i in range(len(cols)))}) "
        f"RETURNING {CONN_COLS}",
        *row.values(),
    )


async def get_connection(conn: asyncpg.Connection, user_id: str, connection_id: uuid.UUID, *, for_update: bool = False) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {CONN_COLS} FROM calendar.connections WHERE id = $1 AND user_id = $2" + (" FOR UPDATE" if for_update else ""),
        connection_id, user_id,
    )


async def get_connection_secrets(conn: asyncpg.Connection, connection_id: uuid.UUID) -> asyncpg.Record | None:
    """Worker side (no user in scope): the full row, secrets included."""
    return await conn.fetchrow("SELECT * FROM calendar.connections WHERE id = $1", connection_id)


async def list_connections(conn: asyncpg.Connection, user_id: str, limit: int, after: list[Any] | None) -> list[asyncpg.Record]:
    if after:
        return await conn.fetch(
            f"SELECT {CONN_COLS} FROM calendar.connections WHERE user_id = $1 AND (created_at, id) > ($2::timestamptz, $3::uuid) "
            "ORDER BY created_at, id LIMIT $4",
            user_id, datetime.fromisoformat(after[0]), uuid.UUID(after[1]), limit,
        )
    return await conn.fetch(
        f"SELECT {CONN_COLS} FROM calendar.connections WHERE user_id = $1 ORDER BY created_at, id LIMIT $2", user_id, limit
    )


async def user_connection_ids(conn: asyncpg.Connection, user_id: str) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT id, provider, status FROM calendar.connections WHERE user_id = $1", user_id)


async def update_connection(conn: asyncpg.Connection, connection_id: uuid.UUID, **fields: Any) -> None:
    if not fields:
        return
    sets = ", ".join(f"{k} = ${i + 2}" for i, k in enumerate(fields))
    await conn.execute(f"UPDATE calendar.connections SET {sets}, updated_at = now() WHERE id = $1", connection_id, *fields.values())


async def delete_connection(conn: asyncpg.Connection, user_id: str, connection_id: uuid.UUID) -> bool:
    return (await conn.execute("DELETE FROM calendar.connections WHERE id = $1 AND user_id = $2", connection_id, user_id)) != "DELETE 0"


# A requested sync makes a connection due now, unless it is backing off after failed runs:
# then its retry (on the backoff schedule) serves the request, and a server that is down is
# not called again on every reminder change or webhook.
_DUE_NOW = "next_sync_at = CASE WHEN failures > 0 THEN next_sync_at ELSE LEAST(next_sync_at, now()) END"


async def request_sync(conn: asyncpg.Connection, connection_id: uuid.UUID) -> None:
    """Due now (see ``_DUE_NOW``). Call it *after* the change it announces has committed
    (never inside that transaction): a run compares ``requested_at`` with its own start to
    know whether it may have missed the change, and ``now()`` is the start of the calling
    transaction."""
    await request_syncs(conn, [connection_id])


async def rediscover_soon(conn: asyncpg.Connection, user_id: str, older_than_s: float) -> list[uuid.UUID]:
    """The user's active connections whose calendar list is older than ``older_than_s``:
    forget when it was read (the next run reads it again) and make them due."""
    rows = await conn.fetch(
        f"""
        UPDATE calendar.connections SET calendars_checked_at = NULL, {_DUE_NOW}, requested_at = now()
        WHERE user_id = $1 AND status = 'active'
          AND (calendars_checked_at IS NULL OR calendars_checked_at < now() - make_interval(secs => $2))
        RETURNING id
        """,
        user_id, older_than_s,
    )
    return [r["id"] for r in rows]


async def request_syncs(conn: asyncpg.Connection, connection_ids: list[uuid.UUID]) -> None:
    if not connection_ids:
        return
    await conn.execute(
        f"UPDATE calendar.connections SET {_DUE_NOW}, requested_at = now() "
        "WHERE id = ANY($1::uuid[]) AND status = 'active'",
        list(connection_ids),
    )


async def claim_due(conn: asyncpg.Connection, limit: int, lease_s: float) -> list[uuid.UUID]:
    """Connections due for a sync, leased so that no other worker takes them meanwhile."""
    rows = await conn.fetch(
        """
        UPDATE calendar.connections c SET lease_until = now() + make_interval(secs => $2)
        WHERE c.id IN (
            SELECT id FROM calendar.connections
            WHERE status = 'active' AND next_sync_at <= now() AND (lease_until IS NULL OR lease_until < now())
            ORDER BY next_sync_at LIMIT $1 FOR UPDATE SKIP LOCKED)
        RETURNING c.id
        """,
        limit, lease_s,
    )
    return [r["id"] for r in rows]


async def finish_lease(conn: asyncpg.Connection, connection_id: uuid.UUID, *, ok: bool, next_in_s: float,
                       error: str | None, run_started: datetime, status: str | None = None) -> None:
    """After a run: the next one is due after ``next_in_s`` (interval or backoff). After a
    successful run it is due at once when a webhook / reminder change asked for a sync after
    the run started (``run_started`` is the database's clock, like ``requested_at``), or when
    the run left queued reminder changes it never attempted (queued after it read the queue,
    or beyond its batch). After a failed run the backoff holds: a busy user's reminder
    changes must not retry a server that is down on every change; the request stays and
    the next run serves it."""
    await conn.execute(
        """
        UPDATE calendar.connections SET
            lease_until = NULL,
            next_sync_at = CASE
                WHEN NOT $3 THEN now() + make_interval(secs => $2)
                WHEN requested_at > $5 THEN now()
                WHEN EXISTS (SELECT 1 FROM calendar.outbound o WHERE o.connection_id = $1 AND o.attempts = 0) THEN now()
                ELSE now() + make_interval(secs => $2) END,
            failures = CASE WHEN $3 THEN 0 ELSE failures + 1 END,
            last_error = $4,
            last_sync_at = CASE WHEN $3 THEN now() ELSE last_sync_at END,
            status = COALESCE($6, status),
            updated_at = now()
        WHERE id = $1
        """,
        connection_id, next_in_s, ok, error, run_started, status,
    )


# ---------------------------------------------------------------- calendars

CAL_COLS = "id, connection_id, user_id, remote_id, name, timezone, sync_enabled, is_target, sync_token, ctag, channel_id, channel_resource_id, channel_expires_at"


async def upsert_calendar(conn: asyncpg.Connection, *, connection_id: uuid.UUID, user_id: str, remote_id: str,
                          name: str | None, timezone: str | None = None) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""
        INSERT INTO calendar.calendars (id, connection_id, user_id, remote_id, name, timezone)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (connection_id, remote_id) DO UPDATE SET name = EXCLUDED.name, timezone = COALESCE(EXCLUDED.timezone, calendar.calendars.timezone)
        RETURNING {CAL_COLS}
        """,
        uuid.uuid4(), connection_id, user_id, remote_id, name, timezone,
    )


async def list_calendars(conn: asyncpg.Connection, connection_id: uuid.UUID) -> list[asyncpg.Record]:
    return await conn.fetch(f"SELECT {CAL_COLS} FROM calendar.calendars WHERE connection_id = $1 ORDER BY name, id", connection_id)


async def get_calendar(conn: asyncpg.Connection, user_id: str, connection_id: uuid.UUID, calendar_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {CAL_COLS} FROM calendar.calendars WHERE id = $1 AND connection_id = $2 AND user_id = $3",
        calendar_id, connection_id, user_id,
    )


async def update_calendar(conn: asyncpg.Connection, calendar_id: uuid.UUID, **fields: Any) -> None:
    if not fields:
        return
    sets = ", ".join(f"{k} = ${i + 2}" for i, k in enumerate(fields))
    await conn.execute(f"UPDATE calendar.calendars SET {sets} WHERE id = $1", calendar_id, *fields.values())


async def delete_calendar(conn: asyncpg.Connection, calendar_id: uuid.UUID) -> None:
    await conn.execute("DELETE FROM calendar.calendars WHERE id = $1", calendar_id)


async def clear_target(conn: asyncpg.Connection, connection_id: uuid.UUID) -> None:
    await conn.execute("UPDATE calendar.calendars SET is_target = false WHERE connection_id = $1 AND is_target", connection_id)


async def target_calendar(conn: asyncpg.Connection, connection_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {CAL_COLS} FROM calendar.calendars WHERE connection_id = $1 AND is_target", connection_id)


async def calendar_by_channel(conn: asyncpg.Connection, channel_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT c.id, c.connection_id, c.channel_token_hash, c.channel_resource_id FROM calendar.calendars c WHERE c.channel_id = $1",
        channel_id,
    )


async def calendars_needing_channel(conn: asyncpg.Connection, before: datetime, limit: int = 100) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""
        SELECT {', '.join('k.' + c.strip() for c in CAL_COLS.split(','))} FROM calendar.calendars k
        JOIN calendar.connections c ON c.id = k.connection_id
        WHERE c.provider = 'google' AND c.status = 'active' AND k.sync_enabled
          AND (k.channel_id IS NULL OR k.channel_expires_at < $1)
        ORDER BY k.channel_expires_at NULLS FIRST LIMIT $2
        """,
        before, limit,
    )


# ---------------------------------------------------------------- links

async def link_by_uid(conn: asyncpg.Connection, calendar_id: uuid.UUID, remote_uid: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM calendar.links WHERE calendar_id = $1 AND remote_uid = $2", calendar_id, remote_uid)


async def links_of_calendar(conn: asyncpg.Connection, calendar_id: uuid.UUID) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM calendar.links WHERE calendar_id = $1", calendar_id)


async def link_by_reminder(conn: asyncpg.Connection, connection_id: uuid.UUID, reminder_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM calendar.links WHERE connection_id = $1 AND reminder_id = $2", connection_id, reminder_id)


async def upsert_link(conn: asyncpg.Connection, *, user_id: str, connection_id: uuid.UUID, calendar_id: uuid.UUID,
                      reminder_id: uuid.UUID, remote_uid: str, href: str | None, etag: str | None, origin: str,
                      event_hash: str, reminder_hash: str, remote_modified_at: datetime | None,
                      reminder_modified_at: datetime | None, master_uid: str | None = None,
                      recurrence_id: str | None = None) -> None:
    await conn.execute(
        """
        INSERT INTO calendar.links (id, user_id, connection_id, calendar_id, reminder_id, remote_uid, href, etag, origin,
                                    event_hash, reminder_hash, remote_modified_at, reminder_modified_at, master_uid, recurrence_id)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
        ON CONFLICT (connection_id, reminder_id) DO UPDATE SET
            calendar_id = EXCLUDED.calendar_id, remote_uid = EXCLUDED.remote_uid, href = EXCLUDED.href, etag = EXCLUDED.etag,
            event_hash = EXCLUDED.event_hash, reminder_hash = EXCLUDED.reminder_hash,
            remote_modified_at = EXCLUDED.remote_modified_at, reminder_modified_at = EXCLUDED.reminder_modified_at,
            master_uid = EXCLUDED.master_uid, recurrence_id = EXCLUDED.recurrence_id, synced_at = now()
        """,
        uuid.uuid4(), user_id, connection_id, calendar_id, reminder_id, remote_uid, href, etag, origin,
        event_hash, reminder_hash, remote_modified_at, reminder_modified_at, master_uid, recurrence_id,
    )


async def links_of_href(conn: asyncpg.Connection, calendar_id: uuid.UUID, href: str) -> list[asyncpg.Record]:
    """Every link of one CalDAV object: its series and the occurrences overridden in it."""
    return await conn.fetch("SELECT * FROM calendar.links WHERE calendar_id = $1 AND href = $2", calendar_id, href)


async def override_links(conn: asyncpg.Connection, calendar_id: uuid.UUID, master_uid: str) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM calendar.links WHERE calendar_id = $1 AND master_uid = $2", calendar_id, master_uid)


async def advance_href_etag(conn: asyncpg.Connection, calendar_id: uuid.UUID, href: str, before: str, after: str) -> None:
    await conn.execute(
        "UPDATE calendar.links SET etag = $4 WHERE calendar_id = $1 AND href = $2 AND etag = $3", calendar_id, href, before, after
    )


async def delete_link(conn: asyncpg.Connection, link_id: uuid.UUID) -> None:
    await conn.execute("DELETE FROM calendar.links WHERE id = $1", link_id)


async def active_connections_of_user(conn: asyncpg.Connection, user_id: str) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT id FROM calendar.connections WHERE user_id = $1 AND status = 'active'", user_id)


async def connections_linked_to(conn: asyncpg.Connection, user_id: str, reminder_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await conn.fetch("SELECT connection_id FROM calendar.links WHERE user_id = $1 AND reminder_id = $2", user_id, reminder_id)
    return [r["connection_id"] for r in rows]


# ---------------------------------------------------------------- Google instance exceptions

async def upsert_exception(conn: asyncpg.Connection, calendar_id: uuid.UUID, master_uid: str, instance_uid: str,
                           original_start: dict[str, Any], cancelled: bool) -> None:
    await conn.execute(
        """
        INSERT INTO calendar.instance_exceptions (calendar_id, master_uid, instance_uid, original_start, cancelled)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (calendar_id, instance_uid) DO UPDATE SET
            master_uid = EXCLUDED.master_uid, original_start = EXCLUDED.original_start, cancelled = EXCLUDED.cancelled
        """,
        calendar_id, master_uid, instance_uid, original_start, cancelled,
    )


async def exceptions_of(conn: asyncpg.Connection, calendar_id: uuid.UUID, master_uids: list[str]) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM calendar.instance_exceptions WHERE calendar_id = $1 AND master_uid = ANY($2::text[])", calendar_id, master_uids
    )


async def delete_exceptions(conn: asyncpg.Connection, calendar_id: uuid.UUID, master_uid: str) -> None:
    await conn.execute("DELETE FROM calendar.instance_exceptions WHERE calendar_id = $1 AND master_uid = $2", calendar_id, master_uid)


async def clear_exceptions(conn: asyncpg.Connection, calendar_id: uuid.UUID) -> None:
    """A full resync lists every exception again."""
    await conn.execute("DELETE FROM calendar.instance_exceptions WHERE calendar_id = $1", calendar_id)


# ---------------------------------------------------------------- outbound queue

async def enqueue_outbound(conn: asyncpg.Connection, connection_id: uuid.UUID, user_id: str, reminder_id: uuid.UUID, op: str) -> None:
    await conn.execute(
        """
        INSERT INTO calendar.outbound (connection_id, reminder_id, user_id, op) VALUES ($1, $2, $3, $4)
        ON CONFLICT (connection_id, reminder_id) DO UPDATE SET op = EXCLUDED.op, queued_at = now(), attempts = 0
        """,
        connection_id, reminder_id, user_id, op,
    )


async def outbound_of(conn: asyncpg.Connection, connection_id: uuid.UUID, limit: int = 1000) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM calendar.outbound WHERE connection_id = $1 ORDER BY queued_at LIMIT $2", connection_id, limit
    )


async def done_outbound(conn: asyncpg.Connection, connection_id: uuid.UUID, reminder_id: uuid.UUID, queued_at: datetime) -> None:
    # Only if nothing newer was queued meanwhile.
    await conn.execute(
        "DELETE FROM calendar.outbound WHERE connection_id = $1 AND reminder_id = $2 AND queued_at <= $3",
        connection_id, reminder_id, queued_at,
    )


async def fail_outbound(conn: asyncpg.Connection, connection_id: uuid.UUID, reminder_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE calendar.outbound SET attempts = attempts + 1 WHERE connection_id = $1 AND reminder_id = $2", connection_id, reminder_id
    )


# ---------------------------------------------------------------- conflicts, runs

async def insert_conflict(conn: asyncpg.Connection, **row: Any) -> None:
    row = {"id": uuid.uuid4(), **row}
    cols = list(row)
    await conn.execute(
        f"INSERT INTO calendar.conflicts ({', '.join(cols)}) VALUES ({', '.join(f'${i + 1}' for i in range(len(cols)))})",
        *row.values(),
    )


async def list_conflicts(conn: asyncpg.Connection, user_id: str, limit: int, after: list[Any] | None,
                         connection_id: uuid.UUID | None = None) -> list[asyncpg.Record]:
    args: list[Any] = [user_id, limit]
    where = "user_id = $1"
    if connection_id is not None:
        args.append(connection_id)
        where += f" AND connection_id = ${len(args)}"
    if after:
        args += [datetime.fromisoformat(after[0]), uuid.UUID(after[1])]
        where += f" AND (created_at, id) < (${len(args) - 1}::timestamptz, ${len(args)}::uuid)"
    return await conn.fetch(f"SELECT * FROM calendar.conflicts WHERE {where} ORDER BY created_at DESC, id DESC LIMIT $2", *args)


async def start_run(conn: asyncpg.Connection, connection_id: uuid.UUID, user_id: str, trigger: str) -> tuple[uuid.UUID, datetime]:
    """(run id, start time by the database's clock: the one ``requested_at`` is written with)."""
    run_id = uuid.uuid4()
    started = await conn.fetchval(
        "INSERT INTO calendar.runs (id, connection_id, user_id, trigger) VALUES ($1, $2, $3, $4) RETURNING started_at",
        run_id, connection_id, user_id, trigger,
    )
    return run_id, started


async def finish_run(conn: asyncpg.Connection, run_id: uuid.UUID, *, status: str, changes_in: int, changes_out: int,
                     requests: int, full_resync: bool, errors: list[dict[str, Any]]) -> asyncpg.Record:
    return await conn.fetchrow(
        """
        UPDATE calendar.runs SET finished_at = clock_timestamp(), status = $2, changes_in = $3, changes_out = $4,
            requests = $5, full_resync = $6, errors = $7
        WHERE id = $1 RETURNING *
        """,
        run_id, status, changes_in, changes_out, requests, full_resync, errors[:200],
    )


async def list_runs(conn: asyncpg.Connection, connection_id: uuid.UUID, limit: int, after: list[Any] | None) -> list[asyncpg.Record]:
    if after:
        return await conn.fetch(
            "SELECT * FROM calendar.runs WHERE connection_id = $1 AND (started_at, id) < ($2::timestamptz, $3::uuid) "
            "ORDER BY started_at DESC, id DESC LIMIT $4",
            connection_id, datetime.fromisoformat(after[0]), uuid.UUID(after[1]), limit,
        )
    return await conn.fetch(
        "SELECT * FROM calendar.runs WHERE connection_id = $1 ORDER BY started_at DESC, id DESC LIMIT $2", connection_id, limit
    )


async def erase_user(conn: asyncpg.Connection, user_id: str) -> None:
    await conn.execute("DELETE FROM calendar.conflicts WHERE user_id = $1", user_id)
    await conn.execute("DELETE FROM calendar.connections WHERE user_id = $1", user_id)


async def update_link_etag(conn: asyncpg.Connection, link_id: uuid.UUID, etag: str | None, href: str | None) -> None:
    await conn.execute("UPDATE calendar.links SET etag = $2, href = COALESCE($3, href), synced_at = now() WHERE id = $1", link_id, etag, href)


async def retry_claim_soon(conn: asyncpg.Connection, connection_id: uuid.UUID, after_s: float = 2.0) -> None:
    await conn.execute(
        "UPDATE calendar.connections SET lease_until = now() + make_interval(secs => $2), requested_at = now() WHERE id = $1",
        connection_id, after_s,
    )
