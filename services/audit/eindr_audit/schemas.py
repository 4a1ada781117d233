"""The audit service's public contract."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class AuditRecord(BaseModel):
    seq: int
    at: datetime
    service: str
    actor_uid: str
    actor_roles: list[str]
    source_ip: str
    action: str
    resource_type: str
    resource_id: str
    subject_uid: str
    request_id: str
    details: dict[str, Any]
    hash: str


class AuditPage(BaseModel):
    items: list[AuditRecord]
    next_cursor: str | None = None


class ChainVerdict(BaseModel):
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str | None = None
