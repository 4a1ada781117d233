"""The gateway's in-memory account state against a real Redis: announced changes apply at
once, and a lost subscription can never leave a stale value behind."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis
from eindr_common.identity import plan_key, revoked_key, set_plan_key, set_revoked_at
from eindr_common.testing import new_uid
from eindr_gateway.account_state import AccountStateCache


async def _until(check, deadline_s: float = 3.0):
    give_up = time.monotonic() + deadline_s
    while True:
        result = await check()
        if result or time.monotonic() > give_up:
            return result
        await asyncio.sleep(0.01)


async def _plan(cache: AccountStateCache, uid: str, expected: str) -> bool:
    return (await cache.get(uid)).plan == expected


@pytest.fixture
async def live_cache(redis_url):
    """A cache whose entries outlive every test (ttl 60 s), subscribed before it is used."""
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    cache = AccountStateCache(client, redis_url, ttl_s=60)
    cache.start()
    try:
        assert await _until(lambda: asyncio.sleep(0, cache.live))
        yield client, cache
    finally:
        await cache.aclose()
        await client.aclose()


async def test_announced_changes_replace_the_cached_state(live_cache):
    client, cache = live_cache
    uid = new_uid()
    assert (await cache.get(uid)).plan == "free"
    # A write that is not announced is not seen while the entry lives (ttl 60 s here):
    # this is what the announcement is for.
    await client.set(plan_key(uid), "premium")
    assert (await cache.get(uid)).plan == "free"
    await set_plan_key(client, uid, "premium")
    assert await _until(lambda: _plan(cache, uid, "premium"))
    await set_revoked_at(client, uid, 1_700_000_000)
    assert await _until(lambda: _revoked(cache, uid, 1_700_000_000))
    # Only forward: an older revocation second changes nothing.
    await set_revoked_at(client, uid, 1_600_000_000, only_forward=True)
    assert await client.get(revoked_key(uid)) == "1700000000"


async def _revoked(cache: AccountStateCache, uid: str, at: int) -> bool:
    return (await cache.get(uid)).revoked_at == at


async def test_a_lost_subscription_empties_the_cache_and_recovers(live_cache):
    client, cache = live_cache
    uid = new_uid()
    assert (await cache.get(uid)).plan == "free"
    # Cut the subscriber's connection and write without announcing, as if the
    # announcement had been published while the gateway was not listening.
    await client.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    await client.set(plan_key(uid), "premium")
    # Seen long before the 60 s entry would have expired: the cache was emptied.
    assert await _until(lambda: _plan(cache, uid, "premium"))
    assert await _until(lambda: asyncio.sleep(0, cache.live))
    # And announcements work again after the reconnect.
    await set_plan_key(client, uid, "free")
    assert await _until(lambda: _plan(cache, uid, "free"))
