"""Background work of the auth service: the consumer of the users stream."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from eindr_common import events

from . import domain, service

log = logging.getLogger("eindr.auth.worker")

GROUP = "auth"


def make_handler(pool: asyncpg.Pool, redis: aioredis.Redis):
    async def handle(event_type: str, payload: dict[str, Any]) -> None:
        if event_type != "user.deleted":
            return
        uid = payload.get("uid")
        if not isinstance(uid, str) or not domain.is_valid_uid(uid):
            # Acknowledge and drop: retrying a malformed event can never succeed.
            log.error("user.deleted without a valid uid; dropped", extra={"fields": {"payload": str(payload)[:200]}})
            return
        deleted_at = payload.get("deleted_at")
        if not isinstance(deleted_at, int) or isinstance(deleted_at, bool) or deleted_at <= 0:
            deleted_at = None  # older producers sent {uid} only: erase without revoking
        await service.erase_user(pool, redis, uid, deleted_at)

    return handle


async def consume_users_stream(pool: asyncpg.Pool, redis: aioredis.Redis, consumer: str, stop: asyncio.Event) -> None:
    """Runs until ``stop`` is set; survives Redis outages (events.consume retries) and
    restarts itself after any other failure."""
    handler = make_handler(pool, redis)
    while not stop.is_set():
        try:
            await events.consume(redis, [events.stream_name("users")], GROUP, consumer, handler, stop=stop)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("users stream consumer failed; restarting")
            try:
                await asyncio.wait_for(stop.wait(), timeout=1)
            except TimeoutError:
                pass
