"""Use cases of the users service. Each write is one transaction (rows, audit entry and
outbox events together); the cache is invalidated and events relayed after the commit."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from eindr_common import audit
from eindr_common.errors import BadRequest, Conflict, NotFound, ServiceUnavailable, Unauthorized
from eindr_common.identity import Principal, delete_plan_key, set_plan_key
from eindr_common.observability import current_request_id
from prometheus_client import Counter
from redis.exceptions import RedisError

from . import cache, domain, outbox, repository
from .schemas import PreferencesPatch, Profile, ProfilePatch, ProvisionHints

log = logging.getLogger("eindr.users")

PROVISIONED = Counter("eindr_users_provisioned_total", "Accounts created on first login")
DELETED = Counter("eindr_users_deleted_total", "Accounts deleted")
PLAN_CHANGES = Counter("eindr_users_plan_changes_total", "Plan changes by admins", ["plan"])
PREFERENCE_CHANGES = Counter("eindr_users_preference_changes_total", "Preference updates that changed something")


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


def _no_account() -> NotFound:
    return NotFound("This user has no account yet; the app's POST /v1/auth/session creates it", code="user_not_found")


def profile_json(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    return Profile.model_validate(dict(row)).model_dump(mode="json")


def preferences_json(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    start, end = row["quiet_hours_start"], row["quiet_hours_end"]
    return {
        "language": row["language"],
        "timezone": row["timezone"],
        "voice": row["voice"],
        "quiet_hours": {"start": domain.format_hhmm(start), "end": domain.format_hhmm(end)} if start and end else None,
        "default_lead_minutes": row["default_lead_minutes"],
        "history_retention_days": row["history_retention_days"],
        "notification_channels": list(row["notification_channels"]),
    }


def _with_token_contact(profile: dict[str, Any], principal: Principal) -> dict[str, Any]:
    """Email and phone come from the verified token claims the gateway forwards; they win
    over what was stored at the last login."""
    fresh = domain.profile_from_claims(principal.claims)
    out = dict(profile)
    for field in ("email", "phone"):
        if fresh[field] is not None:
            out[field] = fresh[field]
    return out


class _AuditTrail:
    """The audit entries of one use case: written to ``users.audit_log`` inside its
    transaction, then reported to the platform's audit trail (``eindr_common.audit``, the
    audit service) once committed. Field names only, never their values."""

    def __init__(self, actor: Principal) -> None:
        self.actor = actor
        self.pending: list[tuple[str, str, dict[str, Any]]] = []

    async def add(
        self,
        conn: asyncpg.Connection,
        subject: str,
        action: str,
        *,
        fields: list[str] | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        await repository.insert_audit(
            conn,
            actor=self.actor.uid,
            subject=subject,
            action=action,
            fields=fields,
            detail=detail,
            request_id=current_request_id(),
        )
        self.pending.append((subject, action, {"fields": sorted(fields or []), **(detail or {})}))

    async def report(self, redis: aioredis.Redis) -> None:
        for subject, action, details in self.pending:
            await audit.record(
                redis,
                service="users",
                actor=self.actor,
                action=action,
                resource_type="user",
                resource_id=subject,
                subject_uid=subject,
                details=details,
            )
        self.pending.clear()


async def _sync_plan_key(redis: aioredis.Redis, uid: str, plan: str) -> None:
    try:
        await set_plan_key(redis, uid, plan)
    except RedisError:
        log.warning("could not write the plan key; the gateway keeps its last value", extra={"fields": {"uid": uid}})


def valid_caller(principal: Principal) -> Principal:
    """The token's subject must be a usable uid (1 to 128 characters of text): a token
    that passed the signature check but carries junk is refused, never sent to SQL."""
    if not domain.is_valid_uid(principal.uid):
        raise Unauthorized("The internal token's subject is not a valid user id", code="invalid_internal_token")
    return principal


# --- provisioning -----------------------------------------------------------------------


async def provision(
    pool: asyncpg.Pool, redis: aioredis.Redis, principal: Principal, hints: ProvisionHints | None
) -> tuple[dict[str, Any], bool]:
    """Idempotent: creates the account on first login, else refreshes the contact fields
    from the verified claims. Returns (profile, created)."""
    uid = principal.uid
    fields = domain.profile_from_claims(principal.claims)
    contact: dict[str, Any] = {}
    trail = _AuditTrail(principal)
    async with _connection(pool) as conn, conn.transaction():
        row = await repository.insert_user_if_absent(conn, uid, fields)
        created = row is not None
        if created:
            await repository.insert_default_preferences(
                conn,
                uid,
                domain.initial_language(hints.language if hints else None),
                domain.initial_timezone(hints.timezone if hints else None),
            )
            await trail.add(conn, uid, "user.provisioned")
            await repository.add_outbox(conn, "user.created", {"uid": uid})
        else:
            row = await repository.get_user(conn, uid, for_update=True)
            if row is None:  # deleted between our insert attempt and this read
                raise Conflict("The account is being deleted; try again", code="user_being_deleted")
            contact = {k: fields[k] for k in ("email", "phone") if fields[k] is not None and fields[k] != row[k]}
            if contact:
                row = await repository.update_user(conn, uid, contact)
                await trail.add(conn, uid, "profile.synced_from_token", fields=list(contact))
    if created or contact:
        await cache.invalidate(redis, uid)
    if created:
        PROVISIONED.inc()
        await outbox.flush_quietly(pool, redis)
    await _sync_plan_key(redis, uid, row["plan"])
    await trail.report(redis)
    return profile_json(row), created


# --- profile ----------------------------------------------------------------------------


async def get_profile(pool: asyncpg.Pool, redis: aioredis.Redis, principal: Principal) -> dict[str, Any]:
    async def load() -> dict[str, Any] | None:
        async with _connection(pool) as conn:
            row = await repository.get_user(conn, principal.uid)
        return profile_json(row) if row else None

    profile = await cache.get_or_load(redis, "profile", principal.uid, load)
    if profile is None:
        raise _no_account()
    return _with_token_contact(profile, principal)


async def update_profile(
    pool: asyncpg.Pool, redis: aioredis.Redis, principal: Principal, patch: ProfilePatch
) -> dict[str, Any]:
    uid = principal.uid
    updates = patch.model_dump(exclude_unset=True)
    trail = _AuditTrail(principal)
    async with _connection(pool) as conn, conn.transaction():
        row = await repository.get_user(conn, uid, for_update=True)
        if row is None:
            raise _no_account()
        changes = domain.changed_fields(dict(row), updates)
        if changes:
            row = await repository.update_user(conn, uid, changes)
            await trail.add(conn, uid, "profile.updated", fields=list(changes))
    if changes:
        await cache.invalidate(redis, uid)
        await trail.report(redis)
    return _with_token_contact(profile_json(row), principal)


# --- preferences ------------------------------------------------------------------------


def _preference_columns(patch: PreferencesPatch) -> dict[str, Any]:
    values = patch.model_dump(exclude_unset=True)
    if "quiet_hours" in values:
        window = values.pop("quiet_hours")
        values["quiet_hours_start"] = domain.parse_hhmm(window["start"]) if window else None
        values["quiet_hours_end"] = domain.parse_hhmm(window["end"]) if window else None
    if "notification_channels" in values:
        values["notification_channels"] = [c for c in domain.CHANNELS if c in values["notification_channels"]]
    return values


def _api_field(column: str) -> str:
    return "quiet_hours" if column.startswith("quiet_hours_") else column


async def get_preferences(pool: asyncpg.Pool, redis: aioredis.Redis, principal: Principal) -> dict[str, Any]:
    async def load() -> dict[str, Any] | None:
        async with _connection(pool) as conn:
            row = await repository.get_preferences(conn, principal.uid)
        return preferences_json(row) if row else None

    preferences = await cache.get_or_load(redis, "preferences", principal.uid, load)
    if preferences is None:
        raise _no_account()
    return preferences


async def update_preferences(
    pool: asyncpg.Pool, redis: aioredis.Redis, principal: Principal, patch: PreferencesPatch
) -> dict[str, Any]:
    uid = principal.uid
    updates = _preference_columns(patch)
    trail = _AuditTrail(principal)
    async with _connection(pool) as conn, conn.transaction():
        before = await repository.get_preferences(conn, uid, for_update=True)
        if before is None:
            raise _no_account()
        changes = domain.changed_fields(dict(before), updates)
        after = before
        if changes:
            after = await repository.update_preferences(conn, uid, changes)
            fields = sorted({_api_field(c) for c in changes})
            await trail.add(conn, uid, "preferences.updated", fields=fields)
            if "timezone" in changes:
                await repository.add_outbox(
                    conn,
                    "user.timezone_changed",
                    {"uid": uid, "old_timezone": before["timezone"], "new_timezone": after["timezone"]},
                )
            await repository.add_outbox(
                conn,
                "user.preferences_changed",
                {"uid": uid, "preferences": preferences_json(after), "changed": fields},
            )
    if changes:
        PREFERENCE_CHANGES.inc()
        await cache.invalidate(redis, uid)
        await outbox.flush_quietly(pool, redis)
        await trail.report(redis)
    return preferences_json(after)


# --- plan (admin) -------------------------------------------------------------------------


def check_uid(uid: str) -> str:
    problem = domain.text_problem(uid)
    if problem or not uid or len(uid) > 128:
        raise BadRequest(
            "uid must be 1 to 128 characters of text",
            code="validation_error",
            errors=[{"field": "uid", "message": problem or "must be 1 to 128 characters"}],
        )
    return uid


async def set_plan(pool: asyncpg.Pool, redis: aioredis.Redis, admin: Principal, uid: str, plan: str) -> dict[str, Any]:
    check_uid(uid)
    trail = _AuditTrail(admin)
    async with _connection(pool) as conn, conn.transaction():
        result = await repository.set_plan(conn, uid, plan)
        if result is None:
            raise NotFound(f"No user {uid!r}", code="user_not_found")
        old_plan, new_plan = result
        if old_plan != new_plan:
            await trail.add(conn, uid, "plan.changed", fields=["plan"], detail={"old": old_plan, "new": new_plan})
            await repository.add_outbox(
                conn, "user.plan_changed", {"uid": uid, "old_plan": old_plan, "new_plan": new_plan}
            )
    # Written even when unchanged: a repeated PUT repairs a key that drifted or was lost.
    try:
        await set_plan_key(redis, uid, new_plan)
    except RedisError as exc:
        raise ServiceUnavailable(
            "The plan is saved but the gateway cannot see it yet; repeat the request", code="redis_unavailable"
        ) from exc
    if old_plan != new_plan:
        PLAN_CHANGES.labels(new_plan).inc()
        await cache.invalidate(redis, uid)
        await outbox.flush_quietly(pool, redis)
        await trail.report(redis)
    return {"id": uid, "plan": new_plan}


# --- account deletion ---------------------------------------------------------------------


async def delete_account(pool: asyncpg.Pool, redis: aioredis.Redis, principal: Principal) -> None:
    """Deletes the profile and preferences and the user's own audit trail (a tombstone
    entry stays), then emits ``user.deleted`` so every service erases its data. Repeating
    it is harmless and emits the event again (consumers are idempotent)."""
    uid = principal.uid
    trail = _AuditTrail(principal)
    async with _connection(pool) as conn, conn.transaction():
        existed = await repository.delete_user(conn, uid)
        await repository.delete_own_audit(conn, uid)
        if existed:
            await trail.add(conn, uid, "user.deleted")
        # deleted_at lets the auth service refuse the tokens issued before the deletion.
        await repository.add_outbox(conn, "user.deleted", {"uid": uid, "deleted_at": int(time.time())})
    if existed:
        DELETED.inc()
    await cache.invalidate(redis, uid)
    try:
        await delete_plan_key(redis, uid)
    except RedisError:
        log.warning("could not delete the plan key", extra={"fields": {"uid": uid}})
    await outbox.flush_quietly(pool, redis)
    await trail.report(redis)
