"""Domain events on Redis Streams: one stream per producing service, consumer groups,
at-least-once delivery (consumers must be idempotent)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

log = logging.getLogger("eindr.events")

STREAM_MAXLEN = 100_000


def stream_name(service: str) -> str:
    return f"eindr:events:{service}"


def _event(event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"id": uuid.uuid4().hex, "type": event_type, "at": time.time(), "payload": json.dumps(payload, default=str)}


async def publish(redis: aioredis.Redis, service: str, event_type: str, payload: dict[str, Any]) -> str:
    return await redis.xadd(stream_name(service), _event(event_type, payload), maxlen=STREAM_MAXLEN, approximate=True)


async def publish_many(redis: aioredis.Redis, service: str, items: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Several events in one round trip, in order (a pipeline, not a transaction: on an
    error the caller cannot know which were added, and republishes all; at-least-once)."""
    async with redis.pipeline(transaction=False) as pipe:
        for event_type, payload in items:
            pipe.xadd(stream_name(service), _event(event_type, payload), maxlen=STREAM_MAXLEN, approximate=True)
        return await pipe.execute()


Handler = Callable[[str, dict[str, Any]], Awaitable[None]]


async def ensure_group(redis: aioredis.Redis, stream: str, group: str) -> None:
    try:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def consume(
    redis: aioredis.Redis,
    streams: list[str],
    group: str,
    consumer: str,
    handler: Handler,
    *,
    block_ms: int = 1000,
    stop: asyncio.Event | None = None,
    reclaim_idle_ms: int = 60_000,
) -> None:
    """Deliver events to ``handler(type, payload)``; ack only after it returns.

    Pending entries of this consumer (from a crash before ack) are re-delivered first.
    Entries left pending longer than ``reclaim_idle_ms`` — by a consumer that died, or by
    a handler that failed — are claimed and retried (``XAUTOCLAIM``), so none is stranded.
    """
    for stream in streams:
        await ensure_group(redis, stream, group)
    stop = stop or asyncio.Event()
    cursor = "0"  # first drain our own pending entries, then new ones
    last_reclaim = time.monotonic()
    while not stop.is_set():
        try:
            if time.monotonic() - last_reclaim >= reclaim_idle_ms / 2000:
                last_reclaim = time.monotonic()
                batches = []
                for stream in streams:
                    _, claimed, *_ = await redis.xautoclaim(stream, group, consumer, min_idle_time=reclaim_idle_ms, count=100)
                    if claimed:
                        batches.append((stream, claimed))
            else:
                batches = await redis.xreadgroup(group, consumer, {s: cursor for s in streams}, count=100, block=block_ms)
        except (aioredis.ConnectionError, aioredis.TimeoutError):
            log.warning("event consumer lost redis; retrying", extra={"fields": {"group": group}})
            await asyncio.sleep(1)
            continue
        if cursor == "0" and not any(entries for _, entries in batches or []):
            cursor = ">"
            continue
        for stream, entries in batches or []:
            for entry_id, fields in entries:
                if not fields:  # trimmed from the stream while pending
                    await redis.xack(stream, group, entry_id)
                    continue
                try:
                    await handler(fields["type"], json.loads(fields.get("payload") or "{}"))
                except Exception:
                    log.exception("event handler failed; the event stays pending", extra={"fields": {"stream": stream, "entry": entry_id}})
                    continue
                await redis.xack(stream, group, entry_id)
