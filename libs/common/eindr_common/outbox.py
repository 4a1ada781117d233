"""Transactional outbox relay: events written in the same transaction as a change are
published to the service's Redis stream after commit (at-least-once); a background relay
picks up whatever a Redis outage left behind."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from . import events

BATCH = 100

Claim = Callable[[asyncpg.Connection, int], Awaitable[list[Any]]]
Delete = Callable[[asyncpg.Connection, list[int]], Awaitable[Any]]


class OutboxRelay:
    def __init__(self, service: str, claim: Claim, delete: Delete) -> None:
        self.service = service
        self._claim = claim
        self._delete = delete
        self._log = logging.getLogger(f"eindr.{service}.outbox")

    async def flush(self, pool: asyncpg.Pool, redis: aioredis.Redis) -> int:
        sent_total = 0
        while True:
            async with pool.acquire() as conn, conn.transaction():
                rows = await self._claim(conn, BATCH)
                if not rows:
                    return sent_total
                try:
                    # One round trip for the batch; the rows leave the outbox only after it.
                    await events.publish_many(redis, self.service, [(row["event_type"], row["payload"]) for row in rows])
                except RedisError:
                    self._log.warning("events not published yet; they stay in the outbox", extra={"fields": {"events": len(rows)}})
                    return sent_total
                await self._delete(conn, [row["id"] for row in rows])
            sent_total += len(rows)
            if len(rows) < BATCH:
                return sent_total

    async def flush_quietly(self, pool: asyncpg.Pool, redis: aioredis.Redis) -> None:
        """After a commit: a relay problem never fails a write that already succeeded."""
        try:
            await self.flush(pool, redis)
        except (OSError, asyncpg.PostgresError, RedisError) as exc:
            self._log.warning("outbox flush failed; the background relay will retry", extra={"fields": {"error": type(exc).__name__}})

    async def relay_forever(self, pool: asyncpg.Pool, redis: aioredis.Redis, stop: asyncio.Event, interval_s: float = 2.0) -> None:
        while not stop.is_set():
            await self.flush_quietly(pool, redis)
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval_s)
            except TimeoutError:
                pass
