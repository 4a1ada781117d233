"""HTTP routes of the users service: parse, call a use case, respond."""

from __future__ import annotations

from typing import Annotated

from eindr_common.db import DbPool
from eindr_common.identity import AdminUser, CurrentUser, Principal
from eindr_common.redis_client import Redis
from fastapi import APIRouter, Body, Depends, Path, Response, status
from fastapi.responses import JSONResponse

from . import service
from .schemas import (
    PlanChange,
    PlanResult,
    Preferences,
    PreferencesPatch,
    Profile,
    ProfilePatch,
    ProvisionHints,
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
_ERRORS = {400: _PROBLEM, 401: _PROBLEM, 404: _PROBLEM, 503: _PROBLEM}

router = APIRouter(prefix="/v1/users", tags=["users"], responses=_ERRORS)


@router.get("/me", response_model=Profile, summary="The caller's profile")
async def get_me(user: Caller, pool: DbPool, redis: Redis) -> dict:
    return await service.get_profile(pool, redis, user)


@router.patch("/me", response_model=Profile, summary="Change display name or avatar (only the fields sent)")
async def patch_me(body: ProfilePatch, user: Caller, pool: DbPool, redis: Redis) -> dict:
    return await service.update_profile(pool, redis, user, body)


@router.delete("/me", status_code=status.HTTP_204_NO_CONTENT, summary="Delete the account and all its data")
async def delete_me(user: Caller, pool: DbPool, redis: Redis) -> Response:
    await service.delete_account(pool, redis, user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me/preferences", response_model=Preferences, summary="The caller's preferences")
async def get_preferences(user: Caller, pool: DbPool, redis: Redis) -> dict:
    return await service.get_preferences(pool, redis, user)


@router.patch("/me/preferences", response_model=Preferences, summary="Change preferences (only the fields sent)")
async def patch_preferences(body: PreferencesPatch, user: Caller, pool: DbPool, redis: Redis) -> dict:
    return await service.update_preferences(pool, redis, user, body)


@router.put(
    "/{uid}/plan", response_model=PlanResult, summary="Set a user's plan (admin role only)", responses={403: _PROBLEM}
)
async def put_plan(
    uid: Annotated[str, Path(min_length=1, max_length=128)],
    body: PlanChange,
    admin: Admin,
    pool: DbPool,
    redis: Redis,
) -> dict:
    return await service.set_plan(pool, redis, admin, uid, body.plan)


# Called by the auth service with the user's own internal token; the gateway does not route it.
internal = APIRouter(prefix="/internal/users", tags=["internal"], include_in_schema=False)


@internal.post("/provision", response_model=Profile)
async def provision(
    user: Caller, pool: DbPool, redis: Redis, hints: Annotated[ProvisionHints | None, Body()] = None
) -> JSONResponse:
    profile, created = await service.provision(pool, redis, user, hints)
    return JSONResponse(profile, status_code=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
