"""Feature flags against a real Redis: precedence, rollout stability, run-time rules."""

from __future__ import annotations

import redis.asyncio as aioredis
from eindr_common.flags import FlagEvaluator, in_rollout, set_rule, set_user_override
from eindr_common.testing import new_uid


async def test_plan_rules_user_overrides_and_env_precedence(redis_url):
    redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
    uid = new_uid()
    flags = FlagEvaluator(redis, refresh_s=0)
    assert await flags.enabled("calendar_sync", uid, "premium") is True
    assert await flags.enabled("calendar_sync", uid, "free") is False
    await set_user_override(redis, uid, "calendar_sync", True)
    assert await flags.enabled("calendar_sync", uid, "free") is True
    forced_off = FlagEvaluator(redis, refresh_s=0, environ={"EINDR_FLAG_CALENDAR_SYNC": "off"})
    assert await forced_off.enabled("calendar_sync", uid, "free") is False
    await set_user_override(redis, uid, "calendar_sync", None)
    assert await flags.enabled("calendar_sync", uid, "free") is False
    assert await flags.enabled("no_such_flag", uid, "premium") is False
    await redis.aclose()


async def test_percentage_rollout_is_stable_and_grows_monotonically(redis_url):
    redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
    flags = FlagEvaluator(redis, refresh_s=0)
    users = [f"user-{i}" for i in range(2000)]
    await set_rule(redis, "ledger_export", plans=["free", "premium"], percent=20)
    at_20 = {u for u in users if await flags.enabled("ledger_export", u, "free")}
    assert 300 < len(at_20) < 500  # ~20 % of 2,000
    assert at_20 == {u for u in users if in_rollout("ledger_export", u, 20)}
    await set_rule(redis, "ledger_export", percent=50)
    at_50 = {u for u in users if await flags.enabled("ledger_export", u, "free")}
    assert at_20 <= at_50  # nobody who had it loses it as the rollout widens
    await redis.delete("eindr:flags:rules")
    await redis.aclose()


async def test_all_for_lists_every_flag(redis_url):
    redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
    flags = FlagEvaluator(redis, refresh_s=0)
    result = await flags.all_for(new_uid(), "free")
    assert result["reminders"] is True and result["calendar_sync"] is False
    await redis.aclose()
