"""Redis client: one connection pool per process, exposed as the ``Redis`` dependency."""

from __future__ import annotations

from typing import Annotated

import redis.asyncio as aioredis
from fastapi import Depends, Request


def create_redis(url: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(url, decode_responses=True, health_check_interval=30, socket_timeout=5)


async def get_redis(request: Request) -> aioredis.Redis:
    return request.app.state.redis


Redis = Annotated[aioredis.Redis, Depends(get_redis)]
