"""Rate limits in Redis through the ``limits`` library's async API (sliding window counter).

Headers follow the IETF RateLimit header fields draft: ``RateLimit-Policy`` describes the
quota, ``RateLimit`` what is left of it, and a 429 carries ``Retry-After``.

Admission is always decided in Redis (``hit``). Reading the window back for the headers is
a second round trip, which profiling put at a tenth of the gateway's CPU per request, so
while a key has plenty of budget left the remaining count in ``RateLimit`` is this
replica's running estimate (the last exact value, minus the hits since), re-read from Redis
at least every ``STATS_REFRESH_S``; below ``EXACT_BELOW`` of the quota, and on every 429,
it is exact. The draft allows this: the field informs clients, it does not decide.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from cachetools import TTLCache
from eindr_common.errors import RateLimited
from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

STATS_REFRESH_S = 1.0
EXACT_BELOW = 0.2


@dataclass
class _Known:
    remaining: int
    reset_at: float


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

    async def check_user(self, uid: str, plan: str) -> Verdict:
        item = self._plans.get(plan) or self._plans["free"]
        return await self._hit(item, f"plan-{plan}", "uid", uid)

    async def check_ip(self, ip: str) -> Verdict:
        return await self._hit(self._anonymous, "ip", "ip", ip)

    async def _hit(self, item: RateLimitItem, policy: str, kind: str, key: str) -> Verdict:
        allowed = await self._limiter.hit(item, kind, key)
        known_key = (policy, kind, key)
        if allowed:
            known = self._known.get(known_key)
            if known is not None and known.remaining - 1 > item.amount * EXACT_BELOW:
                known.remaining -= 1
                return Verdict(policy, item.amount, item.get_expiry(), known.remaining, self._reset_s(known.reset_at))
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

    @staticmethod
    def _reset_s(reset_at: float) -> int:
        return max(0, math.ceil(reset_at - time.time()))

    async def ping(self) -> bool:
        return await self._storage.check()
