"""Every SQL statement of the history service. Queries that serve a user filter on that
user's id: this module is the service's one authorization enforcement point. Worker-only
statements (embedding backlog, retention, habit scan) are marked as such."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

COLUMNS = """id, user_id, occurred_at, transcript, language, intent, slots, actions, reply, latency_ms, outcome,
             embedding IS NOT NULL AS indexed, created_at"""
SUGGESTION_COLUMNS = "id, user_id, title, rrule, weekday, minute_of_day, timezone, occurrences, status, reminder_id, created_at, decided_at"


async def insert_interaction(conn: asyncpg.Connection, user_id: str, data: dict[str, Any]) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""INSERT INTO history.interactions
              (id, user_id, occurred_at, transcript, language, intent, slots, actions, reply, latency_ms, outcome)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {COLUMNS}""",
        uuid.uuid4(), user_id, data["occurred_at"], data["transcript"], data["language"], data["intent"],
        data["slots"], data["actions"], data["reply"], data["latency_ms"], data["outcome"],
    )


async def get_interaction(conn: asyncpg.Connection, user_id: str, interaction_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {COLUMNS} FROM history.interactions WHERE id = $1 AND user_id = $2", interaction_id, user_id)


async def list_interactions(
    conn: asyncpg.Connection, user_id: str, *, limit: int, after: tuple[datetime, uuid.UUID] | None,
    occurred_from: datetime | None, occurred_to: datetime | None, intent: str | None, outcome: str | None,
) -> list[asyncpg.Record]:
    where, args = ["user_id = $1"], [user_id]

    def arg(v: Any) -> str:
        args.append(v)
        return f"${len(args)}"

    if occurred_from is not None:
        where.append(f"occurred_at >= {arg(occurred_from)}")
    if occurred_to is not None:
        where.append(f"occurred_at < {arg(occurred_to)}")
    if intent is not None:
        where.append(f"intent = {arg(intent)}")
    if outcome is not None:
        where.append(f"outcome = {arg(outcome)}")
    if after is not None:
        where.append(f"(occurred_at, id) < ({arg(after[0])}, {arg(after[1])})")
    return await conn.fetch(
        f"SELECT {COLUMNS} FROM history.interactions WHERE {' AND '.join(where)} ORDER BY occurred_at DESC, id DESC LIMIT {arg(limit)}",
        *args,
    )


async def delete_interaction(conn: asyncpg.Connection, user_id: str, interaction_id: uuid.UUID) -> bool:
    result = await conn.execute("DELETE FROM history.interactions WHERE id = $1 AND user_id = $2", interaction_id, user_id)
    return result == "DELETE 1"


async def delete_all(conn: asyncpg.Connection, user_id: str) -> int:
    result = await conn.execute("DELETE FROM history.interactions WHERE user_id = $1", user_id)
    return int(result.split()[-1])


async def search_candidates(
    conn: asyncpg.Connection, user_id: str, query: str, vector: Any | None, *, candidates: int, max_distance: float, ef_search: int,
    exact_max: int = 20_000,
) -> tuple[list[str], list[str], dict[str, float]]:
    semantic: list[str] = []
    similarity: dict[str, float] = {}
    async with conn.transaction(readonly=True):
        if vector is not None:
            # Exact over the user's own rows up to exact_max (pgvector 0.6 post-filters
            # HNSW results, so a small user would get few of theirs); HNSW beyond that.
            own = await conn.fetchval(
                "SELECT count(*) FROM (SELECT 1 FROM history.interactions WHERE user_id = $1 LIMIT $2) c", user_id, exact_max + 1
            )
            if own <= exact_max:
                sql = """WITH mine AS MATERIALIZED (
                             SELECT id, embedding FROM history.interactions WHERE user_id = $1 AND embedding IS NOT NULL)
                         SELECT id::text, distance FROM (
                             SELECT id, embedding <=> $2 AS distance FROM mine ORDER BY distance LIMIT $3) s
                         WHERE distance <= $4"""
            else:
                await conn.execute(f"SET LOCAL hnsw.ef_search = {int(ef_search)}")
                sql = """SELECT id::text, distance FROM (
                             SELECT id, embedding <=> $2 AS distance FROM history.interactions
                             WHERE user_id = $1 AND embedding IS NOT NULL ORDER BY embedding <=> $2 LIMIT $3) s
                         WHERE distance <= $4"""
            for row in await conn.fetch(sql, user_id, vector, candidates, max_distance):
                semantic.append(row["id"])
                similarity[row["id"]] = 1.0 - float(row["distance"])
        rows = await conn.fetch(
            """WITH q AS (SELECT replace(plainto_tsquery('english', $2)::text, ' & ', ' | ')::tsquery AS q)
               SELECT i.id::text FROM history.interactions i, q
               WHERE i.user_id = $1 AND q.q <> ''::tsquery AND i.search_tsv @@ q.q
               ORDER BY ts_rank_cd(i.search_tsv, q.q) DESC, i.occurred_at DESC LIMIT $3""",
            user_id, query, candidates,
        )
    return semantic, [r["id"] for r in rows], similarity


async def get_many(conn: asyncpg.Connection, user_id: str, ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    return await conn.fetch(f"SELECT {COLUMNS} FROM history.interactions WHERE user_id = $1 AND id = ANY($2::uuid[])", user_id, ids)


# --- suggestions ---------------------------------------------------------------------------


async def list_suggestions(conn: asyncpg.Connection, user_id: str, status: str | None) -> list[asyncpg.Record]:
    if status is None:
        return await conn.fetch(f"SELECT {SUGGESTION_COLUMNS} FROM history.suggestions WHERE user_id = $1 ORDER BY created_at DESC", user_id)
    return await conn.fetch(
        f"SELECT {SUGGESTION_COLUMNS} FROM history.suggestions WHERE user_id = $1 AND status = $2 ORDER BY created_at DESC", user_id, status
    )


async def get_suggestion(conn: asyncpg.Connection, user_id: str, suggestion_id: uuid.UUID, *, for_update: bool = False) -> asyncpg.Record | None:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(
        f"SELECT {SUGGESTION_COLUMNS} FROM history.suggestions WHERE id = $1 AND user_id = $2{lock}", suggestion_id, user_id
    )


async def decide_suggestion(conn: asyncpg.Connection, user_id: str, suggestion_id: uuid.UUID, status: str, reminder_id: str | None) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""UPDATE history.suggestions SET status = $3, reminder_id = $4, decided_at = now()
            WHERE id = $1 AND user_id = $2 RETURNING {SUGGESTION_COLUMNS}""",
        suggestion_id, user_id, status, reminder_id,
    )


# --- worker-only ---------------------------------------------------------------------------


async def claim_unembedded(conn: asyncpg.Connection, limit: int, max_attempts: int) -> list[asyncpg.Record]:
    """Inside a transaction: rows waiting for their embedding, locked for this worker."""
    return await conn.fetch(
        """SELECT id, transcript, reply FROM history.interactions
           WHERE embedding IS NULL AND embed_attempts < $2
           ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED""",
        limit, max_attempts,
    )


async def set_embeddings(conn: asyncpg.Connection, rows: list[tuple[uuid.UUID, Any]]) -> None:
    await conn.executemany("UPDATE history.interactions SET embedding = $2 WHERE id = $1", rows)


async def count_attempt(conn: asyncpg.Connection, ids: list[uuid.UUID]) -> None:
    await conn.execute("UPDATE history.interactions SET embed_attempts = embed_attempts + 1 WHERE id = ANY($1::uuid[])", ids)


async def set_retention(conn: asyncpg.Connection, user_id: str, days: int) -> None:
    await conn.execute(
        """INSERT INTO history.retention (user_id, days) VALUES ($1, $2)
           ON CONFLICT (user_id) DO UPDATE SET days = EXCLUDED.days, updated_at = now()""",
        user_id, days,
    )


async def apply_retention(conn: asyncpg.Connection, now: datetime, default_days: int) -> int:
    """Delete every interaction older than its owner's retention (explicit or default)."""
    explicit = await conn.execute(
        """DELETE FROM history.interactions i USING history.retention r
           WHERE i.user_id = r.user_id AND i.occurred_at < $1::timestamptz - make_interval(days => r.days)""",
        now,
    )
    default = await conn.execute(
        """DELETE FROM history.interactions i
           WHERE i.occurred_at < $1::timestamptz - make_interval(days => $2::int)
             AND NOT EXISTS (SELECT 1 FROM history.retention r WHERE r.user_id = i.user_id)""",
        now, default_days,
    )
    return int(explicit.split()[-1]) + int(default.split()[-1])


async def users_with_reminders(conn: asyncpg.Connection, since: datetime, intent: str) -> list[str]:
    return [r["user_id"] for r in await conn.fetch(
        "SELECT DISTINCT user_id FROM history.interactions WHERE intent = $1 AND outcome = 'success' AND occurred_at >= $2",
        intent, since,
    )]


async def reminder_interactions(conn: asyncpg.Connection, user_id: str, since: datetime, intent: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT slots, occurred_at FROM history.interactions
           WHERE user_id = $1 AND intent = $2 AND outcome = 'success' AND occurred_at >= $3 ORDER BY occurred_at""",
        user_id, intent, since,
    )


async def known_suggestions(conn: asyncpg.Connection, user_id: str) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT weekday, minute_of_day, embedding FROM history.suggestions WHERE user_id = $1", user_id)


async def insert_suggestion(conn: asyncpg.Connection, user_id: str, habit: Any, rrule: str) -> bool:
    result = await conn.execute(
        """INSERT INTO history.suggestions (id, user_id, title, rrule, weekday, minute_of_day, timezone, occurrences, embedding)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING""",
        uuid.uuid4(), user_id, habit.title, rrule, habit.weekday, habit.minute_of_day, habit.timezone, habit.occurrences, habit.centroid,
    )
    return result.endswith(" 1")


async def try_user_lock(conn: asyncpg.Connection, user_id: str) -> bool:
    return bool(await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtext('history-habits:' || $1))", user_id))


async def erase_user(conn: asyncpg.Connection, user_id: str) -> int:
    n = await delete_all(conn, user_id)
    await conn.execute("DELETE FROM history.suggestions WHERE user_id = $1", user_id)
    await conn.execute("DELETE FROM history.retention WHERE user_id = $1", user_id)
    return n
