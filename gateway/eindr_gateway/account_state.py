"""Each user's plan, revocation second and flag overrides, read from Redis and kept in memory.

Every proxied request needs them, and reading them was one of the three Redis round trips
that made up a quarter of the gateway's CPU per request (py-spy). Every writer announces a
change on ``ACCOUNT_STATE_CHANNEL`` (``eindr_common.identity``) in the same transaction as
the write, and each gateway replica drops its copy of that user, so a revocation or a plan
change applies from the next request on, as before.

Correctness rests on three rules:
- the cache is used only while the subscription is live; it is emptied whenever the
  subscription (re)starts or fails, so no announcement can be missed unnoticed;
- a value read from Redis is kept only if no announcement arrived while it was being read
  (a generation counter), so a read racing a write cannot store the old value;
- entries expire after ``ttl_s`` anyway, a backstop for anything outside those rules
  (a key edited by hand in redis-cli).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from eindr_common.flags import parse_user_overrides, user_key
from eindr_common.identity import ACCOUNT_STATE_CHANNEL, plan_key, revoked_key
from eindr_common.plans import PLANS
from redis.exceptions import RedisError

log = logging.getLogger("eindr.gateway.account_state")


@dataclass(frozen=True)
class AccountState:
    plan: str
    revoked_at: int | None
    flag_overrides: dict[str, bool]


class AccountStateCache:
    def __init__(self, redis: aioredis.Redis, redis_url: str, *, ttl_s: float = 5.0, max_entries: int = 100_000) -> None:
        self._redis = redis
        # The subscription holds its connection open with no reply for as long as nobody
        # writes: it needs a client without the pool's socket timeout.
        self._subscriber = aioredis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=None, health_check_interval=30)
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._entries: dict[str, tuple[float, AccountState]] = {}
        self._generation = 0
        self._live = False
        self._task: asyncio.Task[None] | None = None

    @property
    def redis(self) -> aioredis.Redis:
        return self._redis

    @property
    def live(self) -> bool:
        return self._live

    async def get(self, uid: str) -> AccountState:
        now = time.monotonic()
        if self._live:
            entry = self._entries.get(uid)
            if entry is not None and entry[0] > now:
                return entry[1]
        generation = self._generation
        plan, revoked_at, overrides = await self._redis.mget(plan_key(uid), revoked_key(uid), user_key(uid))
        state = AccountState(
            plan=plan if plan in PLANS else "free",
            revoked_at=int(float(revoked_at)) if revoked_at is not None else None,
            flag_overrides=parse_user_overrides(overrides),
        )
        if self._live and generation == self._generation:
            if len(self._entries) >= self._max_entries:
                # Simpler than LRU bookkeeping on every hit, and rare: memory stays bounded
                # and the next requests refill what is in use.
                self._entries.clear()
            self._entries[uid] = (now + self._ttl_s, state)
        return state

    def _forget(self, uid: str | None) -> None:
        self._generation += 1
        if uid is None:
            self._entries.clear()
        else:
            self._entries.pop(uid, None)

    def start(self) -> None:
        self._task = asyncio.create_task(self._follow_announcements(), name="account-state-subscription")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self._subscriber.aclose()

    async def _follow_announcements(self) -> None:
        backoff_s = 0.5
        while True:
            pubsub = self._subscriber.pubsub()
            try:
                await pubsub.subscribe(ACCOUNT_STATE_CHANNEL)
                async for message in pubsub.listen():
                    if message["type"] == "subscribe":
                        self._forget(None)
                        self._live = True
                        backoff_s = 0.5
                    elif message["type"] == "message":
                        self._forget(message["data"])
            except (RedisError, OSError) as exc:
                log.warning("account-state subscription lost; reading Redis on every request until it is back",
                            extra={"fields": {"error": type(exc).__name__}})
            finally:
                self._live = False
                self._forget(None)
                try:
                    await pubsub.aclose()
                except (RedisError, OSError):
                    pass
            await asyncio.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, 10.0)
