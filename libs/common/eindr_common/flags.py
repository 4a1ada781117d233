"""Feature flags: by plan, by user and by percentage rollout, with an environment override.

One evaluator serves everyone: the gateway's plan feature locks, the flags the auth
service returns to the app, and any service asking "is X on for this user?".

Order of precedence for flag F and user U:
1. ``EINDR_FLAG_<F>=on|off`` in the process environment (tests, emergencies);
2. a per-user override set by an operator (Redis ``eindr:flags:user:<U>``, JSON {F: bool});
3. the flag's rule: U's plan is among its plans AND U falls inside its rollout percentage
   (a stable hash of F and U, so a user stays in or out as the percentage grows).

Rules start from ``plans.FEATURES`` (100 % rollout) and may be overridden at run time in
Redis (``eindr:flags:rules``, JSON {F: {"plans": [...], "percent": n}}), which processes
re-read at most every few seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

from .identity import ACCOUNT_STATE_CHANNEL
from .plans import FEATURES, PLANS

RULES_KEY = "eindr:flags:rules"
_ENV_PREFIX = "EINDR_FLAG_"


def user_key(uid: str) -> str:
    return f"eindr:flags:user:{uid}"


@dataclass(frozen=True)
class Rule:
    plans: tuple[str, ...]
    percent: int = 100


DEFAULT_RULES: dict[str, Rule] = {name: Rule(plans=plans) for name, plans in FEATURES.items()}


def in_rollout(flag: str, uid: str, percent: int) -> bool:
    if percent >= 100:
        return True
    if percent <= 0:
        return False
    bucket = int.from_bytes(hashlib.sha256(f"{flag}:{uid}".encode()).digest()[:4], "big") % 100
    return bucket < percent


def env_override(flag: str, environ: dict[str, str] | None = None) -> bool | None:
    value = (environ if environ is not None else os.environ).get(_ENV_PREFIX + flag.upper())
    if value is None:
        return None
    return value.strip().lower() in ("1", "on", "true", "yes")


def parse_user_overrides(raw: str | None) -> dict[str, bool]:
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return {k: bool(v) for k, v in data.items()} if isinstance(data, dict) else {}


class FlagEvaluator:
    """Evaluates flags; rules are cached in-process for ``refresh_s`` seconds."""

    def __init__(self, redis: Any, *, refresh_s: float = 5.0, environ: dict[str, str] | None = None) -> None:
        self._redis = redis
        self._refresh_s = refresh_s
        self._environ = environ
        self._rules: dict[str, Rule] = dict(DEFAULT_RULES)
        self._loaded_at = float("-inf")

    async def rules(self) -> dict[str, Rule]:
        if time.monotonic() - self._loaded_at >= self._refresh_s:
            raw = await self._redis.get(RULES_KEY)
            rules = dict(DEFAULT_RULES)
            for name, spec in (json.loads(raw) if raw else {}).items():
                rules[name] = Rule(plans=tuple(p for p in spec.get("plans", PLANS) if p in PLANS), percent=int(spec.get("percent", 100)))
            self._rules = rules
            self._loaded_at = time.monotonic()
        return self._rules

    def evaluate_with(self, rules: dict[str, Rule], flag: str, uid: str, plan: str, user_overrides: dict[str, bool]) -> bool:
        forced = env_override(flag, self._environ)
        if forced is not None:
            return forced
        if flag in user_overrides:
            return user_overrides[flag]
        rule = rules.get(flag)
        return rule is not None and plan in rule.plans and in_rollout(flag, uid, rule.percent)

    async def enabled(self, flag: str, uid: str, plan: str, user_overrides: dict[str, bool] | None = None) -> bool:
        if user_overrides is None:
            user_overrides = parse_user_overrides(await self._redis.get(user_key(uid)))
        return self.evaluate_with(await self.rules(), flag, uid, plan, user_overrides)

    async def all_for(self, uid: str, plan: str) -> dict[str, bool]:
        overrides = parse_user_overrides(await self._redis.get(user_key(uid)))
        rules = await self.rules()
        return {name: self.evaluate_with(rules, name, uid, plan, overrides) for name in sorted(rules)}

    async def unlocking_plan(self, flag: str) -> str | None:
        rule = (await self.rules()).get(flag)
        return next((p for p in PLANS if rule and p in rule.plans), None)


async def set_rule(redis: Any, flag: str, *, plans: list[str] | None = None, percent: int | None = None) -> None:
    raw = await redis.get(RULES_KEY)
    rules = json.loads(raw) if raw else {}
    current = rules.get(flag, {"plans": list(DEFAULT_RULES[flag].plans) if flag in DEFAULT_RULES else list(PLANS), "percent": 100})
    if plans is not None:
        current["plans"] = plans
    if percent is not None:
        current["percent"] = max(0, min(100, percent))
    rules[flag] = current
    await redis.set(RULES_KEY, json.dumps(rules))


async def set_user_override(redis: Any, uid: str, flag: str, value: bool | None) -> None:
    overrides = parse_user_overrides(await redis.get(user_key(uid)))
    if value is None:
        overrides.pop(flag, None)
    else:
        overrides[flag] = value
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(user_key(uid), json.dumps(overrides))
        pipe.publish(ACCOUNT_STATE_CHANNEL, uid)
        await pipe.execute()


def main(argv: list[str] | None = None) -> int:
    """Operator CLI: ``python -m eindr_common.flags rule FLAG --plans free,premium --percent 20``
    or ``python -m eindr_common.flags user UID FLAG on|off|clear``."""
    import argparse
    import asyncio

    from .redis_client import create_redis
    from .settings import CommonSettings

    parser = argparse.ArgumentParser(prog="python -m eindr_common.flags")
    sub = parser.add_subparsers(dest="cmd", required=True)
    rule = sub.add_parser("rule")
    rule.add_argument("flag")
    rule.add_argument("--plans")
    rule.add_argument("--percent", type=int)
    user = sub.add_parser("user")
    user.add_argument("uid")
    user.add_argument("flag")
    user.add_argument("value", choices=["on", "off", "clear"])
    args = parser.parse_args(argv)

    async def run() -> None:
        redis = create_redis(CommonSettings().redis_url)
        try:
            if args.cmd == "rule":
                await set_rule(redis, args.flag, plans=args.plans.split(",") if args.plans else None, percent=args.percent)
            else:
                await set_user_override(redis, args.uid, args.flag, None if args.value == "clear" else args.value == "on")
        finally:
            await redis.aclose()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
