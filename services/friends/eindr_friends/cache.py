"""Redis cache of permission answers, invalidated by generation counters.

Each user has a generation number (``gen:{uid}``), bumped after every committed change
that touches them (friendship, tier, block, share, erasure). A cached answer records the
generations it was computed under and is used only while they are still current, so a
change shows in the very next answer — no TTL wait, no race:

* the reader reads the generations *before* the database, so an answer computed from
  pre-change data always carries pre-change generations and is never served after the
  bump;
* the writer bumps *after* its commit.

When Redis is down, answers come straight from PostgreSQL.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from . import metrics

log = logging.getLogger("eindr.friends.cache")

PREFIX = "eindr:friends:"
GEN_TTL_S = 7 * 24 * 3600


def gen_key(uid: str) -> str:
    return f"{PREFIX}gen:{uid}"


async def cached(
    redis: aioredis.Redis, key: str, uids: list[str], ttl_s: int, load: Callable[[], Awaitable[Any]]
) -> Any:
    full_key = PREFIX + key
    try:
        values = await redis.mget([gen_key(u) for u in uids] + [full_key])
    except RedisError:
        metrics.CACHE.labels("bypass").inc()
        return await load()
    gens = [v or "0" for v in values[:-1]]
    if values[-1] is not None:
        try:
            stored = json.loads(values[-1])
            if stored.get("g") == gens:
                metrics.CACHE.labels("hit").inc()
                return stored["v"]
        except (ValueError, AttributeError):
            pass
    metrics.CACHE.labels("miss").inc()
    value = await load()
    try:
        await redis.set(full_key, json.dumps({"g": gens, "v": value}, default=str), ex=ttl_s)
    except RedisError:
        pass
    return value


async def bump(redis: aioredis.Redis, *uids: str) -> None:
    """After a commit: every cached answer involving these users is stale from now on."""
    if not uids:
        return
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for uid in set(uids):
                pipe.incr(gen_key(uid))
                pipe.expire(gen_key(uid), GEN_TTL_S)
            await pipe.execute()
    except RedisError:
        # Answers cached before this change may be served until their TTL runs out.
        log.error("could not invalidate the permission cache", extra={"fields": {"users": len(uids)}})
