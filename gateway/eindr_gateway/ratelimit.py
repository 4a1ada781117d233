"""Rate limits in Redis through the ``limits`` library's async API (sliding window counter).

Headers follow the IETF RateLimit header fields draft: ``RateLimit-Policy`` describes the
quota, ``RateLimit`` what is left of it, and a 429 carries ``Retry-After``.

Every request is counted in Redis (``hit``). Waiting for that round trip before forwarding
was a fifth of the latency the gateway adds, so a request of a key that is far from its
limit is admitted on this replica's running estimate (the last exact value, minus the hits
since) and its hit is recorded in Redis while the request travels upstream. The estimate is
re-read from Redis at least every ``STATS_REFRESH_S``; below ``EXACT_BELOW`` of the quota,
for a key whose count this replica has not read within that time, and after any failed or refused
background hit, admission waits for Redis and is exact (this replica's own background hits
of the key land first). The cost: other replicas' hits reach this replica's estimate up to
``STATS_REFRESH_S`` late, so only if they spend more than ``EXACT_BELOW`` of a quota within
that second can a request pass that Redis would have refused.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field

from cachetools import TTLCache
from eindr_common.errors import RateLimited
from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

STATS_REFRESH_S = 1.0
EXACT_BELOW = 0.2
# Background hits in flight beyond this (Redis slow or away) make admission wait again.
MAX_BACKGROUND_HITS = 1000

log = logging.getLogger("eindr.gateway.ratelimit")


@dataclass
class _Known:
    remaining: int
    reset_at: float
    recording: set[asyncio.Task] = field(default_factory=set)  # this replica's hits on their way to Redis


@dataclass(frozen=True)
class Verdict:
    policy: str
    limit: int
    window_s: int
    remaining: int
    reset_s: int

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Policy": f'"{self.policy}";q={self.limit};w={self.window_s}',
            "RateLimit": f'"{self.policy}";r={self.remaining};t={self.reset_s}',
        }


class RateLimiter:
    def __init__(self, redis_url: str, plan_limits: dict[str, str], anonymous_limit: str) -> None:
        # limits names its redis-py backed async storage "async+redis".
        self._storage = RedisStorage("async+" + redis_url, implementation="redispy")
        self._limiter = SlidingWindowCounterRateLimiter(self._storage)
        self._plans = {plan: parse(spec) for plan, spec in plan_limits.items()}
        self._anonymous = parse(anonymous_limit)
        self._known: TTLCache = TTLCache(maxsize=100_000, ttl=STATS_REFRESH_S)
        self._background: set[asyncio.Task] = set()

    async def check_user(self, uid: str, plan: str) -> Verdict:
        item = self._plans.get(plan) or self._plans["free"]
        return await self._hit(item, f"plan-{plan}", "uid", uid)

    async def check_ip(self, ip: str) -> Verdict:
        return await self._hit(self._anonymous, "ip", "ip", ip)

    async def _hit(self, item: RateLimitItem, policy: str, kind: str, key: str) -> Verdict:
        known_key = (policy, kind, key)
        known = self._known.get(known_key)
        if (
            known is not None
            and known.remaining - 1 > item.amount * EXACT_BELOW
            and len(self._background) < MAX_BACKGROUND_HITS
        ):
            known.remaining -= 1
            task = asyncio.create_task(self._record(item, kind, key, known_key, known))
            self._background.add(task)
            known.recording.add(task)
            task.add_done_callback(self._background.discard)
            task.add_done_callback(known.recording.discard)
            return Verdict(policy, item.amount, item.get_expiry(), known.remaining, self._reset_s(known.reset_at))
        if known is not None and known.recording:
            # Near the limit the verdict must count this replica's own earlier hits.
            await asyncio.gather(*known.recording, return_exceptions=True)
        allowed = await self._limiter.hit(item, kind, key)
        stats = await self._limiter.get_window_stats(item, kind, key)
        self._known[known_key] = _Known(stats.remaining, stats.reset_time)
        reset_s = self._reset_s(stats.reset_time)
        verdict = Verdict(policy, item.amount, item.get_expiry(), stats.remaining, reset_s)
        if not allowed:
            raise RateLimited(
                f"Too many requests: {item.amount} per {item.get_expiry()} s for this {'plan' if kind == 'uid' else 'address'}",
                headers={**verdict.headers(), "Retry-After": str(max(1, reset_s))},
            )
        return verdict

    async def _record(self, item: RateLimitItem, kind: str, key: str, known_key: tuple, known: _Known) -> None:
        """Count an already admitted request in Redis."""
        try:
            allowed = await self._limiter.hit(item, kind, key)
        except Exception:
            # Redis away or failing: the key's next request waits for Redis and meets it.
            log.warning("rate-limit hit not recorded; the key's next request waits for Redis", exc_info=True)
            allowed = False
        if not allowed and self._known.get(known_key) is known:
            # Other replicas spent the budget faster than the estimate knew: exact from now.
            del self._known[known_key]

    async def aclose(self) -> None:
        """Let the hits still on their way reach Redis (shutdown)."""
        if self._background:
            await asyncio.wait(set(self._background), timeout=2)

    @staticmethod
    def _reset_s(reset_at: float) -> int:
        return max(0, math.ceil(reset_at - time.time()))

    async def ping(self) -> bool:
        return await self._storage.check()
