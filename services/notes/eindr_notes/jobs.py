"""The notes job queue on Redis: a stream with a consumer group (at-least-once), plus a
sorted set of delayed retries. Jobs carry ids only; the database row is the source of
truth, so a lost job is re-created by the worker's sweep and a duplicate is harmless."""

from __future__ import annotations

import json
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

STREAM = "eindr:jobs:notes"
DELAYED = "eindr:jobs:notes:delayed"
GROUP = "notes-worker"
MAXLEN = 100_000
# A job un-acked this long belonged to a worker that died: another one claims it. Longer
# than the slowest job (the STT timeout) so that a live worker is never robbed.
CLAIM_IDLE_MS = 300_000

TRANSCRIBE = "transcribe"
EMBED = "embed"


async def enqueue(redis: aioredis.Redis, kind: str, note_id: str, user_id: str, attempt: int = 1) -> None:
    await redis.xadd(
        STREAM, {"kind": kind, "note_id": note_id, "user_id": user_id, "attempt": str(attempt)}, maxlen=MAXLEN, approximate=True
    )


async def enqueue_later(redis: aioredis.Redis, delay_s: float, kind: str, note_id: str, user_id: str, attempt: int) -> None:
    member = json.dumps({"kind": kind, "note_id": note_id, "user_id": user_id, "attempt": attempt})
    await redis.zadd(DELAYED, {member: time.time() + delay_s})


_MOVE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, member in ipairs(due) do
  if redis.call('ZREM', KEYS[1], member) == 1 then
    local job = cjson.decode(member)
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'kind', job.kind, 'note_id', job.note_id,
               'user_id', job.user_id, 'attempt', tostring(job.attempt))
  end
end
return #due
"""


async def move_due(redis: aioredis.Redis) -> int:
    """Delayed retries whose time has come go onto the stream (atomic: no double move)."""
    return int(await redis.eval(_MOVE_DUE, 2, DELAYED, STREAM, str(time.time()), str(MAXLEN)))


async def ensure_group(redis: aioredis.Redis) -> None:
    try:
        await redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def read(redis: aioredis.Redis, consumer: str, count: int, block_ms: int) -> list[tuple[str, dict[str, Any]]]:
    """New jobs for this consumer, plus jobs other consumers left un-acked for CLAIM_IDLE_MS
    (a worker killed mid-job): those are claimed and run again."""
    claimed = await redis.xautoclaim(STREAM, GROUP, consumer, min_idle_time=CLAIM_IDLE_MS, start_id="0-0", count=count)
    entries = list(claimed[1]) if claimed and len(claimed) > 1 else []
    if not entries:
        batches = await redis.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=count, block=block_ms)
        for _, items in batches or []:
            entries.extend(items)
    return [(entry_id, fields) for entry_id, fields in entries if fields]


async def ack(redis: aioredis.Redis, entry_id: str) -> None:
    await redis.xack(STREAM, GROUP, entry_id)
    await redis.xdel(STREAM, entry_id)


async def depth(redis: aioredis.Redis) -> int:
    return int(await redis.xlen(STREAM)) + int(await redis.zcard(DELAYED))
