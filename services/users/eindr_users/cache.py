"""Read-through Redis cache of profiles and preferences, invalidated on write.

Plain cache-aside has a race: a reader misses, reads the old row, a writer commits and
deletes the key, then the reader stores the old row for a whole TTL. Each user therefore
has a generation counter that every write bumps (after its commit); a reader stores what
it read only if the generation is still the one it saw before reading the database.
Redis trouble never fails a read: the cache is skipped and the database answers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger("eindr.users.cache")

TTL_S = 300
KINDS = ("profile", "preferences")

# Store the value only if the user's generation is unchanged since the read began.
_SET_IF_GENERATION = """
local current = redis.call('GET', KEYS[2]) or '0'
if current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""


def cache_key(kind: str, uid: str) -> str:
    return f"eindr:users:cache:{kind}:{uid}"


def generation_key(uid: str) -> str:
    return f"eindr:users:cache:gen:{uid}"


async def get_or_load(
    redis: aioredis.Redis, kind: str, uid: str, load: Callable[[], Awaitable[dict[str, Any] | None]]
) -> dict[str, Any] | None:
    key, gen_key = cache_key(kind, uid), generation_key(uid)
    try:
        cached, generation = await redis.mget(key, gen_key)
    except RedisError:
        log.warning("cache read failed; answering from the database", extra={"fields": {"kind": kind}})
        return await load()
    if cached is not None:
        return json.loads(cached)
    value = await load()
    if value is not None:
        try:
            await redis.eval(
                _SET_IF_GENERATION, 2, key, gen_key, generation or "0", json.dumps(value, default=str), TTL_S
            )
        except RedisError:
            log.warning("cache fill failed", extra={"fields": {"kind": kind}})
    return value


async def invalidate(redis: aioredis.Redis, uid: str) -> None:
    """Call after the write has committed."""
    try:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.incr(generation_key(uid))
            pipe.expire(generation_key(uid), TTL_S * 4)
            pipe.delete(*(cache_key(kind, uid) for kind in KINDS))
            await pipe.execute()
    except RedisError:
        # The write itself succeeded; a stale entry lives at most TTL_S.
        log.error("cache invalidation failed; entries expire within %ss", TTL_S, extra={"fields": {"uid": uid}})
