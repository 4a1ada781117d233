"""Use cases of the auth service."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import redis.asyncio as aioredis
from eindr_common import audit, plans
from eindr_common.errors import NotFound, ServiceUnavailable, Unauthorized
from eindr_common.flags import FlagEvaluator
from eindr_common.identity import Principal, set_revoked_at
from eindr_common.observability import current_request_id
from prometheus_client import Counter
from redis.exceptions import RedisError

from . import domain, repository
from .clients import UsersClient
from .schemas import Device, SessionRequest

log = logging.getLogger("eindr.auth")

SESSIONS = Counter("eindr_auth_sessions_total", "Sessions set up", ["new_device"])
REVOCATIONS = Counter("eindr_auth_revocations_total", "Token revocations")
ERASED_DEVICES = Counter("eindr_auth_erased_devices_total", "Devices erased after user.deleted")


@asynccontextmanager
async def _connection(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    try:
        conn = await pool.acquire(timeout=5)
    except (OSError, asyncpg.PostgresConnectionError, TimeoutError) as exc:
        raise ServiceUnavailable("The database is not reachable", code="database_unavailable") from exc
    try:
        yield conn
    finally:
        await pool.release(conn)


def device_json(row: asyncpg.Record) -> dict[str, Any]:
    return Device.model_validate(dict(row)).model_dump(mode="json")


async def _audit(
    conn: asyncpg.Connection,
    redis: aioredis.Redis,
    actor: Principal,
    subject: str,
    action: str,
    resource: tuple[str, str],
    detail: dict[str, Any] | None = None,
) -> None:
    """One audit entry: ``auth.audit_log`` (in the caller's transaction) and the
    platform's audit trail (``eindr_common.audit``; best effort, never fails the write)."""
    await repository.insert_audit(
        conn, actor=actor.uid, subject=subject, action=action, detail=detail, request_id=current_request_id()
    )
    await audit.record(
        redis,
        service="auth",
        actor=actor,
        action=action,
        resource_type=resource[0],
        resource_id=resource[1],
        subject_uid=subject,
        details=detail,
    )


def valid_caller(principal: Principal) -> Principal:
    """The token's subject must be a usable uid (1 to 128 characters of text): a token
    that passed the signature check but carries junk is refused, never sent to SQL."""
    if not domain.is_valid_uid(principal.uid):
        raise Unauthorized("The internal token's subject is not a valid user id", code="invalid_internal_token")
    return principal


async def start_session(
    pool: asyncpg.Pool,
    redis: aioredis.Redis,
    users: UsersClient,
    principal: Principal,
    body: SessionRequest,
    *,
    flags: FlagEvaluator,
    max_devices: int,
) -> dict[str, Any]:
    """On every app start: provision the account (first login), register the device,
    and tell the app its plan and the features that plan unlocks."""
    device = body.device
    profile = await users.provision(principal, language=device.locale, timezone=device.timezone)
    sent = device.model_fields_set
    async with _connection(pool) as conn, conn.transaction():
        if device.push_token is not None:
            await repository.lock_push_token(conn, device.push_token)
        row = await repository.upsert_device(conn, principal.uid, device.model_dump(), sent)
        if row["push_token"] is not None:
            await repository.release_push_token(conn, row["push_token"], row["id"])
        if row["inserted"]:
            await repository.prune_devices(conn, principal.uid, max_devices)
            await _audit(
                conn,
                redis,
                principal,
                principal.uid,
                "device.registered",
                ("device", str(row["id"])),
                {"platform": row["platform"]},
            )
    SESSIONS.labels(str(bool(row["inserted"])).lower()).inc()
    return {
        "user": profile.model_dump(mode="json"),
        "plan": profile.plan,
        "features": await _features(flags, principal.uid, profile.plan),
        "device": device_json(row),
    }


async def _features(flags: FlagEvaluator, uid: str, plan: str) -> dict[str, bool]:
    """The same evaluation the gateway's feature locks use (plan rules, rollouts, per-user
    overrides); with Redis unreachable, the plan's static table."""
    try:
        return await flags.all_for(uid, plan)
    except RedisError:
        log.warning("feature flags unavailable; answering the plan defaults", extra={"fields": {"uid": uid}})
        return plans.features_for(plan)


async def list_devices(pool: asyncpg.Pool, principal: Principal) -> dict[str, Any]:
    async with _connection(pool) as conn:
        rows = await repository.list_devices(conn, principal.uid)
    return {"items": [device_json(r) for r in rows]}


async def sign_out_device(pool: asyncpg.Pool, redis: aioredis.Redis, principal: Principal, device_row_id: UUID) -> None:
    """Logout of one device: it stops receiving pushes and leaves the device list.
    Repeating it is a no-op; another user's device is not found."""
    async with _connection(pool) as conn, conn.transaction():
        outcome = await repository.sign_out_device(conn, principal.uid, device_row_id)
        if outcome is None:
            raise NotFound("No such device", code="device_not_found")
        if outcome:
            await _audit(conn, redis, principal, principal.uid, "device.signed_out", ("device", str(device_row_id)))


async def revoke(pool: asyncpg.Pool, redis: aioredis.Redis, admin: Principal, uid: str) -> dict[str, Any]:
    """Refuse ``uid``'s Firebase tokens issued before now (firebase-admin's
    ``check_revoked`` semantics, enforced by the gateway from the Redis key)."""
    revoked_at = int(time.time())
    try:
        await set_revoked_at(redis, uid, revoked_at)
    except RedisError as exc:
        raise ServiceUnavailable("Redis is not reachable; nothing was revoked", code="redis_unavailable") from exc
    async with _connection(pool) as conn:
        await _audit(conn, redis, admin, uid, "tokens.revoked", ("user", uid), {"revoked_at": revoked_at})
    REVOCATIONS.inc()
    return {"uid": uid, "revoked_at": datetime.fromtimestamp(revoked_at, UTC)}


async def erase_user(pool: asyncpg.Pool, redis: aioredis.Redis, uid: str, deleted_at: int | None) -> int:
    """``user.deleted`` from the users stream: remove every device of that user and
    refuse the Firebase tokens issued before the deletion (the app signs out; a new
    sign-in starts a new account). Idempotent (the event may arrive more than once)."""
    if deleted_at is not None:
        await set_revoked_at(redis, uid, deleted_at, only_forward=True)
    async with _connection(pool) as conn, conn.transaction():
        count = await repository.delete_user_devices(conn, uid)
        await repository.delete_own_audit(conn, uid)
    ERASED_DEVICES.inc(count)
    log.info("erased user's devices", extra={"fields": {"uid": uid, "devices": count}})
    return count
