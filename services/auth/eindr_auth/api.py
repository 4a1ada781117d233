"""HTTP routes of the auth service: parse, call a use case, respond."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from eindr_common.db import DbPool
from eindr_common.idempotency import IdempotencyKey
from eindr_common.identity import AdminUser, CurrentUser, Principal
from eindr_common.redis_client import Redis
from fastapi import APIRouter, Depends, Request, Response, status

from . import service
from .schemas import (
    DeviceList,
    RevokeRequest,
    RevokeResult,
    SessionRequest,
    SessionResponse,
)


async def _caller(user: CurrentUser) -> Principal:
    return service.valid_caller(user)


async def _admin(admin: AdminUser) -> Principal:
    return service.valid_caller(admin)


# The verified caller (CurrentUser / AdminUser) with a usable uid. (async def: FastAPI
# runs a plain def dependency in the thread pool, a thread hop on every request.)
Caller = Annotated[Principal, Depends(_caller)]
Admin = Annotated[Principal, Depends(_admin)]

_PROBLEM = {"description": "Problem details (RFC 9457)", "content": {"application/problem+json": {}}}
_ERRORS = {400: _PROBLEM, 401: _PROBLEM, 503: _PROBLEM}

router = APIRouter(prefix="/v1/auth", tags=["auth"], responses=_ERRORS)


@router.post(
    "/session",
    response_model=SessionResponse,
    summary="Set up the session on app start: provision the account, register the device",
    responses={502: _PROBLEM, 504: _PROBLEM},
)
async def session(
    body: SessionRequest, user: Caller, pool: DbPool, redis: Redis, request: Request, idem: IdempotencyKey
) -> Response:
    """Safe to repeat (the same device_id updates the same row); an ``Idempotency-Key``
    additionally replays the first answer verbatim."""
    settings = request.app.state.settings

    async def produce() -> dict:
        return await service.start_session(
            pool,
            redis,
            request.app.state.users_client,
            user,
            body,
            flags=request.app.state.flags,
            max_devices=settings.auth_max_devices,
        )

    return await idem.run(body, produce, status_code=status.HTTP_200_OK)


@router.get("/devices", response_model=DeviceList, summary="The caller's signed-in devices")
async def devices(user: Caller, pool: DbPool) -> dict:
    return await service.list_devices(pool, user)


@router.delete(
    "/devices/{id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Sign out one device (logout)",
    responses={404: _PROBLEM},
)
async def sign_out(id: UUID, user: Caller, pool: DbPool, redis: Redis) -> Response:
    await service.sign_out_device(pool, redis, user, id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/revoke",
    response_model=RevokeResult,
    summary="Revoke a user's tokens issued before now (admin role only)",
    responses={403: _PROBLEM},
)
async def revoke(body: RevokeRequest, admin: Admin, pool: DbPool, redis: Redis) -> dict:
    return await service.revoke(pool, redis, admin, body.uid)
