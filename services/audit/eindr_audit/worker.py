"""The ingest loop: audit events from the Redis stream into the chained store."""

from __future__ import annotations

import asyncio
import logging
import socket

import asyncpg
import redis.asyncio as aioredis
from eindr_common.audit import AUDIT_STREAM
from prometheus_client import Counter
from redis.exceptions import ResponseError

from . import service

GROUP = "audit"
INGESTED = Counter("eindr_audit_records_total", "Audit records appended to the chain", ["service", "action"])
log = logging.getLogger("eindr.audit.worker")


async def ingest_forever(pool: asyncpg.Pool, redis: aioredis.Redis, stop: asyncio.Event) -> None:
    consumer = f"{socket.gethostname()}-{id(stop)}"
    try:
        await redis.xgroup_create(AUDIT_STREAM, GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
    while not stop.is_set():
        try:
            # Reclaim what a crashed consumer left unacknowledged, then read new events.
            _, claimed, *_ = await redis.xautoclaim(AUDIT_STREAM, GROUP, consumer, min_idle_time=30_000, count=100)
            batches = [(AUDIT_STREAM, claimed)] if claimed else []
            batches += await redis.xreadgroup(GROUP, consumer, {AUDIT_STREAM: ">"}, count=100, block=1000) or []
            for _, entries in batches:
                for entry_id, fields in entries:
                    if not fields:
                        continue
                    seq = await service.ingest(pool, fields)
                    if seq is not None:
                        INGESTED.labels(fields.get("service", ""), fields.get("action", "")).inc()
                    await redis.xack(AUDIT_STREAM, GROUP, entry_id)
        except (aioredis.ConnectionError, aioredis.TimeoutError, OSError, asyncpg.PostgresError):
            log.exception("audit ingest failed; retrying")
            await asyncio.sleep(1)
