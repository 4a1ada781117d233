"""Use cases of the audit service."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg
from eindr_common.errors import BadRequest
from eindr_common.identity import Principal
from eindr_common.pagination import PageParams, encode_cursor

from . import repository
from .domain import ChainVerifier, Verdict

log = logging.getLogger("eindr.audit")


def _record_json(row: asyncpg.Record) -> dict[str, Any]:
    record = dict(row)
    record["actor_roles"] = [r for r in record["actor_roles"].split(",") if r]
    record.pop("prev_hash", None)
    record.pop("event_id", None)
    return record


def _before_seq(page: PageParams) -> int | None:
    if not page.after:
        return None
    if len(page.after) != 1 or not isinstance(page.after[0], int):
        raise BadRequest("cursor is not one this API issued", code="invalid_cursor",
                         errors=[{"field": "cursor", "message": "malformed cursor"}])
    return page.after[0]


async def search(conn: asyncpg.Connection, page: PageParams, **filters: Any) -> dict[str, Any]:
    since, until = filters.get("since"), filters.get("until")
    if since and until and since >= until:
        raise BadRequest("'since' must be before 'until'", code="invalid_range", errors=[{"field": "since", "message": "must be before until"}])
    rows = await repository.search(conn, limit=page.limit + 1, before_seq=_before_seq(page), **filters)
    items = [_record_json(r) for r in rows[: page.limit]]
    return {"items": items, "next_cursor": encode_cursor([items[-1]["seq"]]) if len(rows) > page.limit else None}


async def own_trail_csv(conn: asyncpg.Connection, user: Principal) -> AsyncIterator[str]:
    """Everything the user did or that was done to their data, oldest first, as CSV."""
    header = ["seq", "at", "service", "actor_uid", "action", "resource_type", "resource_id", "request_id", "source_ip", "details"]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    before: int | None = None
    rows_out: list[list[Any]] = []
    while True:
        rows = await repository.search(conn, limit=1000, before_seq=before, involving_uid=user.uid)
        if not rows:
            break
        rows_out.extend(
            [r["seq"], r["at"].isoformat(), r["service"], r["actor_uid"], r["action"], r["resource_type"],
             r["resource_id"], r["request_id"], r["source_ip"], json.dumps(r["details"], sort_keys=True)]
            for r in rows
        )
        before = rows[-1]["seq"]
    for row in reversed(rows_out):
        writer.writerow(row)
    yield buffer.getvalue()


async def verify_chain(conn: asyncpg.Connection) -> Verdict:
    verifier = ChainVerifier()
    head = await repository.head_seq(conn)
    # aclosing: stopping at the first bad record must end the cursor's transaction at
    # once, before the connection is used again.
    async with contextlib.aclosing(repository.iterate_all(conn)) as records:
        async for record in records:
            if not verifier.feed(record):
                break
    return verifier.finish(head)


async def ingest(pool: asyncpg.Pool, fields: dict[str, str]) -> int | None:
    async with pool.acquire() as conn:
        return await repository.append(conn, repository.event_from_stream(fields))


def parse_time(value: str | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise BadRequest(f"'{field}' must be an RFC 3339 time", code="invalid_time", errors=[{"field": field, "message": "RFC 3339 with offset"}]) from exc
    if parsed.tzinfo is None:
        raise BadRequest(f"'{field}' needs a UTC offset", code="invalid_time", errors=[{"field": field, "message": "missing UTC offset"}])
    return parsed
