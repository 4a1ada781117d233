"""HTTP routes of the calendar service: parse, call a use case, respond."""

from __future__ import annotations

import uuid

from eindr_common.db import DbConn
from eindr_common.idempotency import IdempotencyKey
from eindr_common.identity import CurrentUser
from eindr_common.pagination import Pagination
from fastapi import APIRouter, Request, Response

from . import service
from .schemas import (
    CalDAVConnect,
    CalendarOut,
    CalendarPatch,
    ConflictPage,
    ConnectionOut,
    ConnectionPage,
    ConnectionPatch,
    GoogleCallback,
    GoogleConnectStarted,
    RunOut,
    RunPage,
)

router = APIRouter(prefix="/v1/calendar", tags=["calendar"])
webhooks = APIRouter(prefix="/v1/calendar/webhooks", tags=["calendar webhooks"])


def _deps(request: Request) -> service.Deps:
    return request.app.state.deps


@router.post("/connections/caldav", status_code=201, response_model=ConnectionOut)
async def connect_caldav(body: CalDAVConnect, request: Request, user: CurrentUser, idem: IdempotencyKey):
    return await idem.run(body.model_dump(exclude={"password"}) | {"p": service.token_hash(body.password)},
                          lambda: service.connect_caldav(_deps(request), user, body))


@router.post("/google/connect", response_model=GoogleConnectStarted)
async def google_connect(request: Request, user: CurrentUser):
    return await service.google_connect(_deps(request), user)


@router.post("/google/callback", status_code=201, response_model=ConnectionOut)
async def google_callback(body: GoogleCallback, request: Request, user: CurrentUser):
    return await service.google_callback(_deps(request), user, body)


@router.get("/connections", response_model=ConnectionPage)
async def list_connections(conn: DbConn, user: CurrentUser, page: Pagination, request: Request):
    await service.rediscover_soon(_deps(request), conn, user)
    return await service.list_connections(conn, user, page.limit, page.after)


@router.get("/connections/{connection_id}", response_model=ConnectionOut)
async def get_connection(connection_id: uuid.UUID, conn: DbConn, user: CurrentUser, request: Request):
    await service.rediscover_soon(_deps(request), conn, user)
    return await service.get_connection(conn, user, connection_id)


@router.patch("/connections/{connection_id}", response_model=ConnectionOut)
async def patch_connection(connection_id: uuid.UUID, body: ConnectionPatch, request: Request, user: CurrentUser):
    return await service.patch_connection(_deps(request), user, connection_id, body)


@router.patch("/connections/{connection_id}/calendars/{calendar_id}", response_model=CalendarOut)
async def patch_calendar(connection_id: uuid.UUID, calendar_id: uuid.UUID, body: CalendarPatch, request: Request, user: CurrentUser):
    return await service.patch_calendar(_deps(request), user, connection_id, calendar_id, body)


@router.delete("/connections/{connection_id}", status_code=204)
async def delete_connection(connection_id: uuid.UUID, request: Request, user: CurrentUser) -> Response:
    await service.delete_connection(_deps(request), user, connection_id)
    return Response(status_code=204)


@router.post("/connections/{connection_id}/sync", response_model=RunOut)
async def sync_now(connection_id: uuid.UUID, request: Request, user: CurrentUser):
    return await service.sync_now(_deps(request), user, connection_id)


@router.get("/connections/{connection_id}/runs", response_model=RunPage)
async def list_runs(connection_id: uuid.UUID, conn: DbConn, user: CurrentUser, page: Pagination):
    return await service.list_runs(conn, user, connection_id, page.limit, page.after)


@router.get("/conflicts", response_model=ConflictPage)
async def list_conflicts(conn: DbConn, user: CurrentUser, page: Pagination, connection_id: uuid.UUID | None = None):
    return await service.list_conflicts(conn, user, page.limit, page.after, connection_id)


@webhooks.post("/google", status_code=204, responses={403: {"description": "wrong channel token"}, 404: {"description": "unknown channel"}})
async def google_webhook(request: Request) -> Response:
    """Google Calendar push notification (no body). Authenticated by the channel id and the
    random token set when the channel was created, not by the internal token: the gateway
    routes it without a Firebase token."""
    await service.google_webhook(_deps(request), {k.lower(): v for k, v in request.headers.items()})
    return Response(status_code=204)
