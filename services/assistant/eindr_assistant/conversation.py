"""Conversation state in Redis: a pending confirmation per (user, conversation), with a TTL.

A destructive action on several items is not done at once: its exact targets (ids) are
stored here and the user is asked. The next turn's "yes" runs exactly that action on
exactly those ids; "no" drops it; silence lets the TTL drop it.
"""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis


def _key(uid: str, conversation_id: str) -> str:
    return f"eindr:assistant:pending:{uid}:{conversation_id}"


async def put_pending(redis: aioredis.Redis, uid: str, conversation_id: str, pending: dict[str, Any], ttl_s: int) -> None:
    await redis.set(_key(uid, conversation_id), json.dumps(pending), ex=ttl_s)


async def get_pending(redis: aioredis.Redis, uid: str, conversation_id: str) -> dict[str, Any] | None:
    raw = await redis.get(_key(uid, conversation_id))
    return json.loads(raw) if raw else None


async def take_pending(redis: aioredis.Redis, uid: str, conversation_id: str) -> dict[str, Any] | None:
    """Read and delete atomically: two racing "yes" turns cannot both run the action."""
    raw = await redis.getdel(_key(uid, conversation_id))
    return json.loads(raw) if raw else None


async def drop_pending(redis: aioredis.Redis, uid: str, conversation_id: str) -> None:
    await redis.delete(_key(uid, conversation_id))


def _audio_key(uid: str, interaction_id: str) -> str:
    return f"eindr:assistant:audio:{uid}:{interaction_id}"


async def put_audio(redis_bin: aioredis.Redis, uid: str, interaction_id: str, audio: bytes, ttl_s: int) -> None:
    await redis_bin.set(_audio_key(uid, interaction_id), audio, ex=ttl_s)


async def get_audio(redis_bin: aioredis.Redis, uid: str, interaction_id: str) -> bytes | None:
    return await redis_bin.get(_audio_key(uid, interaction_id))
