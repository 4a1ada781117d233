"""Audit trail producer: every admin action and user-side write is reported here, once,
and lands in the audit service's hash-chained, append-only store.

Delivery is a Redis Stream (at-least-once; the event id makes the store's insert
idempotent), so recording never blocks or fails the write it describes on the audit
service being slow.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from .identity import Principal
from .observability import current_request_id

AUDIT_STREAM = "eindr:audit"
log = logging.getLogger("eindr.audit")


async def record(
    redis: Any,
    *,
    service: str,
    actor: Principal | None,
    action: str,
    resource_type: str,
    resource_id: str | None = None,
    subject_uid: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    event = {
        "event_id": uuid.uuid4().hex,
        "at": repr(time.time()),
        "service": service,
        "actor_uid": actor.uid if actor else "",
        "actor_roles": ",".join(actor.roles) if actor else "",
        "source_ip": str(actor.claims.get("ip", "")) if actor else "",
        "action": action,
        "resource_type": resource_type,
        "resource_id": resource_id or "",
        "subject_uid": subject_uid or (actor.uid if actor else ""),
        "request_id": current_request_id() or "",
        "details": json.dumps(details or {}, default=str),
    }
    try:
        await redis.xadd(AUDIT_STREAM, event)
    except Exception:
        # The write itself succeeded; losing its audit line must be loud, not fatal.
        log.exception("could not record audit event", extra={"fields": {"action": action, "service": service}})
