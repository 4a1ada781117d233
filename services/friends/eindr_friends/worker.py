"""Background work of the friends service: the consumer of the users stream."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from eindr_common import events

from . import service

log = logging.getLogger("eindr.friends.worker")

GROUP = "friends"


def make_handler(deps: service.Deps):
    async def handle(event_type: str, payload: dict[str, Any]) -> None:
        if event_type != "user.deleted":
            return
        uid = payload.get("uid")
        if not isinstance(uid, str) or not 1 <= len(uid) <= 128:
            log.error("user.deleted without a valid uid; dropped", extra={"fields": {"payload": str(payload)[:200]}})
            return
        counts = await service.erase_user(deps, uid)
        log.info("erased a deleted user's relations", extra={"fields": counts})

    return handle


async def consume_users_stream(deps: service.Deps, consumer: str, stop: asyncio.Event) -> None:
    handler = make_handler(deps)
    while not stop.is_set():
        try:
            await events.consume(deps.redis, [events.stream_name("users")], GROUP, consumer, handler, stop=stop)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("users stream consumer failed; restarting")
            try:
                await asyncio.wait_for(stop.wait(), timeout=1)
            except TimeoutError:
                pass
