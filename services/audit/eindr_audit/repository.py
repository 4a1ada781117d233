"""All SQL of the audit service."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg

from .domain import chain_hash

_COLUMNS = ("seq, event_id, at, service, actor_uid, actor_roles, source_ip, action, resource_type, "
            "resource_id, subject_uid, request_id, details, prev_hash, hash")


async def append(conn: asyncpg.Connection, event: dict[str, Any]) -> int | None:
    """Chain and insert one event; None when it was stored before (redelivery)."""
    async with conn.transaction():
        if await conn.fetchval("SELECT 1 FROM audit.records WHERE event_id = $1", event["event_id"]):
            return None
        head = await conn.fetchrow("SELECT seq, hash FROM audit.chain_head FOR UPDATE")
        record = {**event, "seq": head["seq"] + 1}
        record["prev_hash"] = head["hash"]
        record["hash"] = chain_hash(head["hash"], record)
        await conn.execute(
            f"INSERT INTO audit.records ({_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)",
            record["seq"], record["event_id"], record["at"], record["service"], record["actor_uid"],
            record["actor_roles"], record["source_ip"], record["action"], record["resource_type"],
            record["resource_id"], record["subject_uid"], record["request_id"], record["details"],
            record["prev_hash"], record["hash"],
        )
        await conn.execute("UPDATE audit.chain_head SET seq = $1, hash = $2", record["seq"], record["hash"])
        return record["seq"]


async def search(
    conn: asyncpg.Connection,
    *,
    limit: int,
    before_seq: int | None,
    involving_uid: str | None = None,
    actor_uid: str | None = None,
    action: str | None = None,
    service: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[asyncpg.Record]:
    """Newest first, keyset-paginated by seq."""
    return await conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM audit.records
        WHERE ($2::bigint IS NULL OR seq < $2)
          AND ($3::text IS NULL OR actor_uid = $3 OR subject_uid = $3)
          AND ($4::text IS NULL OR actor_uid = $4)
          AND ($5::text IS NULL OR action = $5)
          AND ($6::text IS NULL OR service = $6)
          AND ($7::timestamptz IS NULL OR at >= $7)
          AND ($8::timestamptz IS NULL OR at < $8)
        ORDER BY seq DESC
        LIMIT $1
        """,
        limit, before_seq, involving_uid, actor_uid, action, service, since, until,
    )


async def head_seq(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT seq FROM audit.chain_head")


async def iterate_all(conn: asyncpg.Connection) -> AsyncIterator[dict[str, Any]]:
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        async for row in conn.cursor(f"SELECT {_COLUMNS} FROM audit.records ORDER BY seq", prefetch=1000):
            yield dict(row)


def event_from_stream(fields: dict[str, str]) -> dict[str, Any]:

    return {
        "event_id": fields["event_id"],
        "at": datetime.fromtimestamp(float(fields["at"]), tz=UTC),
        "service": fields.get("service", ""),
        "actor_uid": fields.get("actor_uid", ""),
        "actor_roles": fields.get("actor_roles", ""),
        "source_ip": fields.get("source_ip", ""),
        "action": fields.get("action", ""),
        "resource_type": fields.get("resource_type", ""),
        "resource_id": fields.get("resource_id", ""),
        "subject_uid": fields.get("subject_uid", ""),
        "request_id": fields.get("request_id", ""),
        "details": json.loads(fields.get("details") or "{}"),
    }
