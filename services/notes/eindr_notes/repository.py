"""Every SQL statement of the notes service. Each query that serves a user filters on an
owner's id: the caller's own, or the owner named by a friend's share that
``service.authorize`` resolved (a share is honoured only as "this owner's note", so a share
of someone else's id matches nothing). Lists and search take the caller's id plus the
(owner, note) pairs shared with them. The exceptions are named as such (``*_unscoped``) and
are used only by the worker (which acts on jobs it created) and the HMAC-signed audio
route."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

COLUMNS = """id, user_id, title, body, transcript, tags, status, failure_reason, attempts, language,
             audio_key, audio_format, audio_bytes, duration_s, embedding IS NOT NULL AS indexed,
             content_version, created_at, updated_at"""


async def insert_note(
    conn: asyncpg.Connection,
    *,
    note_id: uuid.UUID,
    user_id: str,
    title: str | None,
    body: str | None,
    tags: list[str],
    status: str,
    language: str | None,
    audio_key: str | None,
    audio_format: str | None,
    audio_bytes: int | None,
) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""INSERT INTO notes.notes (id, user_id, title, body, tags, status, language, audio_key, audio_format, audio_bytes)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {COLUMNS}""",
        note_id, user_id, title, body, tags, status, language, audio_key, audio_format, audio_bytes,
    )


async def get_note(conn: asyncpg.Connection, user_id: str, note_id: uuid.UUID, *, for_update: bool = False) -> asyncpg.Record | None:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(f"SELECT {COLUMNS} FROM notes.notes WHERE id = $1 AND user_id = $2{lock}", note_id, user_id)


async def owns(conn: asyncpg.Connection, user_id: str, note_id: uuid.UUID) -> bool:
    """The note is the user's, now or as a tombstone (deleted by them)."""
    return bool(await conn.fetchval(
        """SELECT EXISTS (SELECT 1 FROM notes.notes WHERE id = $1 AND user_id = $2)
               OR EXISTS (SELECT 1 FROM notes.tombstones WHERE note_id = $1 AND user_id = $2)""",
        note_id, user_id,
    ))


async def owner_among(conn: asyncpg.Connection, note_id: uuid.UUID, owners: list[str]) -> str | None:
    """Which of ``owners`` (those whose share of ``note_id`` the caller holds) owns it."""
    return await conn.fetchval("SELECT user_id FROM notes.notes WHERE id = $1 AND user_id = ANY($2::text[])", note_id, owners)


async def list_notes(
    conn: asyncpg.Connection,
    user_id: str,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
    tag: str | None,
    created_from: datetime | None,
    created_to: datetime | None,
    status: str | None,
    own: bool = True,
    shared: Sequence[tuple[str, str, str]] = (),
) -> list[asyncpg.Record]:
    """The caller's notes (``own``) and those of ``shared`` (owner, note id, access) that
    their owners really own, newest first by the note's creation, keyset-paginated."""
    owners, ids = _shared_args(shared)
    args: list[Any] = [user_id]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    where = []
    if tag is not None:
        where.append(f"n.tags @> ARRAY[{arg(tag)}]::text[]")
    if created_from is not None:
        where.append(f"n.created_at >= {arg(created_from)}")
    if created_to is not None:
        where.append(f"n.created_at < {arg(created_to)}")
    if status is not None:
        where.append(f"n.status = {arg(status)}")
    if after is not None:
        where.append(f"(n.created_at, n.id) < ({arg(after[0])}, {arg(after[1])})")
    cond = "".join(f" AND {w}" for w in where)
    lim = arg(limit)
    order = "ORDER BY created_at DESC, id DESC"
    # One branch per source, each walking its own index in order and stopping at the page
    # size (an OR of both would sort all of a big user's notes for every page).
    branches = []
    if own:
        branches.append(f"(SELECT {COLUMNS} FROM notes.notes n WHERE n.user_id = $1{cond} {order} LIMIT {lim})")
    if ids:
        branches.append(
            f"""(SELECT {COLUMNS} FROM notes.notes n
                 JOIN unnest({arg(owners)}::text[], {arg(ids)}::uuid[]) AS s(owner_id, note_id)
                   ON n.user_id = s.owner_id AND n.id = s.note_id
                 WHERE n.user_id <> $1{cond} {order} LIMIT {lim})"""
        )
    if not branches:
        return []
    return await conn.fetch(f"SELECT * FROM ({' UNION ALL '.join(branches)}) v {order} LIMIT {lim}", *args)


async def update_note(
    conn: asyncpg.Connection, user_id: str, note_id: uuid.UUID, changes: dict[str, Any], *, content_changed: bool
) -> asyncpg.Record | None:
    sets = []
    args: list[Any] = [note_id, user_id]
    for column, value in changes.items():
        args.append(value)
        sets.append(f"{column} = ${len(args)}")
    if content_changed:
        sets.append("content_version = content_version + 1")
    sets.append("updated_at = now()")
    return await conn.fetchrow(
        f"UPDATE notes.notes SET {', '.join(sets)} WHERE id = $1 AND user_id = $2 RETURNING {COLUMNS}", *args
    )


async def delete_note(conn: asyncpg.Connection, user_id: str, note_id: uuid.UUID) -> asyncpg.Record | None:
    """Deletes the note and leaves a tombstone; returns the deleted row's audio key."""
    row = await conn.fetchrow(
        "DELETE FROM notes.notes WHERE id = $1 AND user_id = $2 RETURNING id, audio_key", note_id, user_id
    )
    if row is not None:
        await conn.execute(
            "INSERT INTO notes.tombstones (note_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", note_id, user_id
        )
    return row


async def mark_for_retry(conn: asyncpg.Connection, user_id: str, note_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""UPDATE notes.notes SET status = 'pending', failure_reason = NULL, attempts = 0, updated_at = now()
            WHERE id = $1 AND user_id = $2 AND status = 'failed' RETURNING {COLUMNS}""",
        note_id, user_id,
    )


# The notes a caller may read: their own, plus the (owner, id) pairs friends share with them
# (from the friends service). Parameters $1 (uid), $2 (owners), $3 (ids).
_VISIBLE = "(n.user_id = $1 OR (n.user_id, n.id) IN (SELECT * FROM unnest($2::text[], $3::uuid[])))"


def _shared_args(shared: Sequence[tuple[str, str, str]]) -> tuple[list[str], list[uuid.UUID]]:
    """(owner, note id, access) grants as two parallel arrays for ``unnest``; ids that are
    not UUIDs (friends stores any item id) and repeated pairs are dropped."""
    pairs: dict[tuple[str, uuid.UUID], None] = {}
    for owner, note_id, *_ in shared:
        try:
            pairs[(owner, uuid.UUID(str(note_id)))] = None
        except ValueError:
            continue
    return [o for o, _ in pairs], [i for _, i in pairs]


async def search_candidates(
    conn: asyncpg.Connection,
    user_id: str,
    query: str,
    vector: Any | None,
    *,
    candidates: int,
    max_distance: float,
    ef_search: int,
    shared: Sequence[tuple[str, str, str]] | None = None,
    exact_max: int = 20_000,
) -> tuple[list[str], list[str], dict[str, float]]:
    """The caller's best notes by meaning (cosine distance on the HNSW index) and by words
    (full-text rank, any of the query's words). Returns (semantic ids, full-text ids,
    cosine similarity per semantic id)."""
    semantic: list[str] = []
    similarity: dict[str, float] = {}
    owners, ids = _shared_args(shared or [])
    visible = "n.user_id = $1" if not ids else _VISIBLE
    extra = (owners, ids) if ids else ()
    base = 4 if ids else 2  # first parameter number after the visibility ones
    async with conn.transaction(readonly=True):
        if vector is not None:
            # pgvector 0.6 filters HNSW results after the scan: for a user owning a small
            # share of the table, ef_search candidates hold few of theirs and the planner
            # still picks the index. So: exact distances over the user's own rows (index on
            # user_id) up to exact_max notes; the HNSW index only beyond that.
            own = await conn.fetchval(
                "SELECT count(*) FROM (SELECT 1 FROM notes.notes WHERE user_id = $1 LIMIT $2) c", user_id, exact_max + 1
            )
            if own + len(ids) <= exact_max:
                sql = f"""WITH visible AS MATERIALIZED (
                              SELECT n.id, n.embedding FROM notes.notes n WHERE {visible} AND n.embedding IS NOT NULL)
                          SELECT id::text, distance FROM (
                              SELECT id, embedding <=> ${base} AS distance FROM visible
                              ORDER BY distance LIMIT ${base + 1}) s
                          WHERE distance <= ${base + 2}"""
            else:
                await conn.execute(f"SET LOCAL hnsw.ef_search = {int(ef_search)}")
                sql = f"""SELECT id::text, distance FROM (
                              SELECT n.id, n.embedding <=> ${base} AS distance FROM notes.notes n
                              WHERE {visible} AND n.embedding IS NOT NULL
                              ORDER BY n.embedding <=> ${base} LIMIT ${base + 1}) s
                          WHERE distance <= ${base + 2}"""
            rows = await conn.fetch(sql, user_id, *extra, vector, candidates, max_distance)
            for row in rows:
                semantic.append(row["id"])
                similarity[row["id"]] = 1.0 - float(row["distance"])
        # plainto_tsquery ANDs the words; a spoken question rarely contains all of a note's
        # words, so the same lexemes are ORed (ranked by ts_rank_cd, coverage-aware).
        rows = await conn.fetch(
            f"""WITH q AS (SELECT replace(plainto_tsquery('english', ${base})::text, ' & ', ' | ')::tsquery AS q)
               SELECT n.id::text FROM notes.notes n, q
               WHERE {visible} AND q.q <> ''::tsquery AND n.search_tsv @@ q.q
               ORDER BY ts_rank_cd(n.search_tsv, q.q) DESC, n.created_at DESC LIMIT ${base + 1}""",
            user_id, *extra, query, candidates,
        )
        fulltext = [row["id"] for row in rows]
    return semantic, fulltext, similarity


async def get_many(
    conn: asyncpg.Connection, user_id: str, ids: list[uuid.UUID], shared: Sequence[tuple[str, str, str]] | None = None
) -> list[asyncpg.Record]:
    owners, shared_ids = _shared_args(shared or [])
    return await conn.fetch(
        f"SELECT {COLUMNS} FROM notes.notes n WHERE n.id = ANY($4::uuid[]) AND {_VISIBLE}", user_id, owners, shared_ids, ids
    )


async def erase_user(conn: asyncpg.Connection, user_id: str) -> int:
    deleted = await conn.fetchval("WITH d AS (DELETE FROM notes.notes WHERE user_id = $1 RETURNING 1) SELECT count(*) FROM d", user_id)
    await conn.execute("DELETE FROM notes.tombstones WHERE user_id = $1", user_id)
    return int(deleted)


# --- worker and signed-URL access (unscoped by design; see the module docstring) ----------


async def get_note_unscoped(conn: asyncpg.Connection, note_id: uuid.UUID, *, for_update: bool = False) -> asyncpg.Record | None:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(f"SELECT {COLUMNS} FROM notes.notes WHERE id = $1{lock}", note_id)


async def set_transcribed(
    conn: asyncpg.Connection, note_id: uuid.UUID, transcript: str, language: str | None, duration_s: float | None
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""UPDATE notes.notes SET transcript = $2, language = coalesce($3, language), duration_s = $4,
                   status = 'transcribed', failure_reason = NULL, content_version = content_version + 1, updated_at = now()
            WHERE id = $1 AND status = 'pending' RETURNING {COLUMNS}""",
        note_id, transcript, language, duration_s,
    )


async def set_attempt(conn: asyncpg.Connection, note_id: uuid.UUID, attempt: int) -> None:
    await conn.execute("UPDATE notes.notes SET attempts = $2 WHERE id = $1 AND status = 'pending'", note_id, attempt)


async def set_failed(conn: asyncpg.Connection, note_id: uuid.UUID, reason: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""UPDATE notes.notes SET status = 'failed', failure_reason = $2, updated_at = now()
            WHERE id = $1 AND status = 'pending' RETURNING {COLUMNS}""",
        note_id, reason[:500],
    )


async def set_embedding(conn: asyncpg.Connection, note_id: uuid.UUID, vector: Any, content_version: int) -> bool:
    result = await conn.execute(
        "UPDATE notes.notes SET embedding = $2 WHERE id = $1 AND content_version = $3", note_id, vector, content_version
    )
    return result.endswith(" 1")


async def clear_embedding(conn: asyncpg.Connection, note_id: uuid.UUID) -> None:
    await conn.execute("UPDATE notes.notes SET embedding = NULL WHERE id = $1", note_id)


async def stale_work(conn: asyncpg.Connection, older_than_s: float, limit: int = 500) -> list[asyncpg.Record]:
    """Notes whose job was lost (Redis down at the time, worker crash): pending too long,
    or with content but no embedding."""
    return await conn.fetch(
        """SELECT id, user_id, status FROM notes.notes
           WHERE (status = 'pending' OR (embedding IS NULL AND status IN ('transcribed', 'ready')
                  AND coalesce(title, body, transcript) IS NOT NULL))
             AND updated_at < now() - make_interval(secs => $1)
           ORDER BY updated_at LIMIT $2""",
        older_than_s, limit,
    )


async def touch(conn: asyncpg.Connection, note_ids: list[uuid.UUID]) -> None:
    await conn.execute("UPDATE notes.notes SET updated_at = now() WHERE id = ANY($1::uuid[])", note_ids)


async def purge_tombstones(conn: asyncpg.Connection, older_than_days: int = 30) -> int:
    result = await conn.execute(
        "DELETE FROM notes.tombstones WHERE deleted_at < now() - make_interval(days => $1)", older_than_days
    )
    return int(result.split()[-1])


async def audio_keys_of_user(conn: asyncpg.Connection, user_id: str) -> list[str]:
    return [r["audio_key"] for r in await conn.fetch("SELECT audio_key FROM notes.notes WHERE user_id = $1 AND audio_key IS NOT NULL", user_id)]
