"""Rate limits in Redis through the ``limits`` library's async API (sliding window counter).

Headers follow the IETF RateLimit header fields draft: ``RateLimit-Policy`` describes the
quota, ``RateLimit`` what is left of it, and a 429 carries ``Retry-After``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from eindr_common.errors import RateLimited
from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter


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

    async def check_user(self, uid: str, plan: str) -> Verdict:
        item = self._plans.get(plan) or self._plans["free"]
        return await self._hit(item, f"plan-{plan}", "uid", uid)

    async def check_ip(self, ip: str) -> Verdict:
        return await self._hit(self._anonymous, "ip", "ip", ip)

    async def _hit(self, item: RateLimitItem, policy: str, kind: str, key: str) -> Verdict:
        allowed = await self._limiter.hit(item, kind, key)
        stats = await self._limiter.get_window_stats(item, kind, key)
        reset_s = max(0, math.ceil(stats.reset_time - time.time()))
        verdict = Verdict(policy, item.amount, item.get_expiry(), stats.remaining, reset_s)
        if not allowed:
            raise RateLimited(
                f"Too many requests: {item.amount} per {item.get_expiry()} s for this {'plan' if kind == 'uid' else 'address'}",
                headers={**verdict.headers(), "Retry-After": str(max(1, reset_s))},
            )
        return verdict

    async def ping(self) -> bool:
        return await self._storage.check()
