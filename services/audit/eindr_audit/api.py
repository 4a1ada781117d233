"""HTTP routes of the audit service."""

from __future__ import annotations

from typing import Annotated

from eindr_common.db import DbConn
from eindr_common.identity import AdminUser, CurrentUser
from eindr_common.pagination import Pagination
from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from . import service
from .schemas import AuditPage, ChainVerdict

router = APIRouter(tags=["audit"])

_Text = Annotated[str | None, Query(max_length=128, pattern=r"^[^\x00]*$")]


@router.get("/v1/admin/audit", response_model=AuditPage, summary="Search the audit trail (admin role)")
async def search(
    admin: AdminUser,
    conn: DbConn,
    page: Pagination,
    uid: _Text = None,
    actor: _Text = None,
    action: _Text = None,
    service_name: Annotated[str | None, Query(alias="service", max_length=64, pattern=r"^[a-z_-]*$")] = None,
    since: Annotated[str | None, Query(max_length=64)] = None,
    until: Annotated[str | None, Query(max_length=64)] = None,
) -> dict:
    return await service.search(
        conn, page, involving_uid=uid, actor_uid=actor, action=action, service=service_name,
        since=service.parse_time(since, "since"), until=service.parse_time(until, "until"),
    )


@router.post("/v1/admin/audit/verify", response_model=ChainVerdict, summary="Check the hash chain for edits or deletions (admin role)")
async def verify(admin: AdminUser, conn: DbConn) -> dict:
    verdict = await service.verify_chain(conn)
    return verdict.__dict__


@router.get("/v1/audit/me", response_model=AuditPage, summary="My own audit trail")
async def mine(user: CurrentUser, conn: DbConn, page: Pagination) -> dict:
    return await service.search(conn, page, involving_uid=user.uid)


@router.get("/v1/audit/me/export", summary="Export my own audit trail as CSV", response_class=StreamingResponse)
async def export_mine(user: CurrentUser, conn: DbConn) -> StreamingResponse:
    return StreamingResponse(
        service.own_trail_csv(conn, user),
        media_type="text/csv",
        headers={"content-disposition": 'attachment; filename="eindr-audit.csv"'},
    )
