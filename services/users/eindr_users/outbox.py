"""Relays events from the ``users.outbox`` table to the users Redis stream.

Use cases write their events in the same transaction as the change; ``flush`` runs right
after the commit (so events are usually out before the response) and ``relay_forever`` in
the background picks up whatever a Redis outage left behind. Delivery is at-least-once.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import redis.asyncio as aioredis
from eindr_common import events
from redis.exceptions import RedisError

from . import repository

log = logging.getLogger("eindr.users.outbox")

STREAM_SERVICE = "users"
BATCH = 100


async def flush(pool: asyncpg.Pool, redis: aioredis.Redis, *, wait: bool = False) -> int:
    """Publish pending events in order; returns how many went out. With ``wait`` (after a
    write, before its response) it waits for a concurrent relay instead of skipping the
    rows that relay holds, so the write's events are on the stream when it returns
    (unless Redis is down)."""
    sent_total = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await repository.claim_outbox(conn, BATCH, wait=wait)
            sent: list[int] = []
            for row in rows:
                try:
                    await events.publish(redis, STREAM_SERVICE, row["event_type"], row["payload"])
                except RedisError:
                    log.warning(
                        "event not published yet; it stays in the outbox",
                        extra={"fields": {"event": row["event_type"]}},
                    )
                    break
                sent.append(row["id"])
            if sent:
                await repository.delete_outbox(conn, sent)
        sent_total += len(sent)
        if len(sent) < BATCH:
            return sent_total


async def flush_quietly(pool: asyncpg.Pool, redis: aioredis.Redis, *, wait: bool = True) -> None:
    """After a commit: never let a relay problem fail a write that already succeeded."""
    try:
        await flush(pool, redis, wait=wait)
    except (OSError, asyncpg.PostgresError, RedisError) as exc:
        log.warning(
            "outbox flush failed; the background relay will retry", extra={"fields": {"error": type(exc).__name__}}
        )


async def relay_forever(
    pool: asyncpg.Pool, redis: aioredis.Redis, stop: asyncio.Event, interval_s: float = 2.0
) -> None:
    while not stop.is_set():
        await flush_quietly(pool, redis, wait=False)
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
        except TimeoutError:
            pass
