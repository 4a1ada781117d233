"""Relays events from ``friends.outbox`` to the friends Redis stream (at-least-once).

Use cases write their events in the same transaction as the change; ``flush_quietly``
runs right after the commit and ``relay_forever`` picks up whatever a Redis outage left.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import redis.asyncio as aioredis
from eindr_common import events
from redis.exceptions import RedisError

from . import repository

log = logging.getLogger("eindr.friends.outbox")

STREAM_SERVICE = "friends"
BATCH = 100


async def flush(pool: asyncpg.Pool, redis: aioredis.Redis) -> int:
    sent_total = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await repository.claim_outbox(conn, BATCH)
            sent: list[int] = []
            for row in rows:
                try:
                    await events.publish(redis, STREAM_SERVICE, row["event_type"], row["payload"])
                except RedisError:
                    log.warning("event not published yet; it stays in the outbox", extra={"fields": {"event": row["event_type"]}})
                    break
                sent.append(row["id"])
            if sent:
                await repository.delete_outbox(conn, sent)
        sent_total += len(sent)
        if len(sent) < BATCH:
            return sent_total


async def flush_quietly(pool: asyncpg.Pool, redis: aioredis.Redis) -> None:
    """After a commit: a relay problem never fails a write that already succeeded."""
    try:
        await flush(pool, redis)
    except (OSError, asyncpg.PostgresError, RedisError) as exc:
        log.warning("outbox flush failed; the background relay will retry", extra={"fields": {"error": type(exc).__name__}})


async def relay_forever(pool: asyncpg.Pool, redis: aioredis.Redis, stop: asyncio.Event, interval_s: float = 2.0) -> None:
    while not stop.is_set():
        await flush_quietly(pool, redis)
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
        except TimeoutError:
            pass
