"""Background work of the ledger: the consumer of the users stream (``user.deleted``)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from eindr_common import events

from . import service

log = logging.getLogger("eindr.ledger.worker")

GROUP = "ledger"


def make_handler(pool: asyncpg.Pool):
    async def handle(event_type: str, payload: dict[str, Any]) -> None:
        if event_type != "user.deleted":
            return
        uid = payload.get("uid")
        if not isinstance(uid, str) or not 1 <= len(uid) <= 128:
            log.error("user.deleted without a valid uid; dropped", extra={"fields": {"payload": str(payload)[:200]}})
            return
        result = await service.erase_user(pool, uid)
        log.info("erased a deleted user's ledger", extra={"fields": result})

    return handle


async def consume_users_stream(pool: asyncpg.Pool, redis: aioredis.Redis, consumer: str, stop: asyncio.Event) -> None:
    handler = make_handler(pool)
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
