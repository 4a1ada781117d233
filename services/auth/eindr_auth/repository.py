"""All SQL of the auth service, one function per query.

Authorization lives here: every query on devices is scoped to the caller's uid (from the
verified internal token), so another user's device id is simply not found.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

DEVICE_COLUMNS = "id, device_id, platform, push_token, app_version, locale, timezone, last_seen_at"


async def upsert_device(conn: asyncpg.Connection, uid: str, device: dict[str, Any], sent: set[str]) -> asyncpg.Record:
    """Same (user, device_id) -> same row, updated and signed in again. Optional fields
    not in ``sent`` keep their stored value."""
    return await conn.fetchrow(
        f"""
        INSERT INTO auth.devices AS d (user_id, device_id, platform, push_token, app_version, locale, timezone)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (user_id, device_id) DO UPDATE SET
            platform      = EXCLUDED.platform,
            push_token    = CASE WHEN $8 THEN EXCLUDED.push_token ELSE d.push_token END,
            app_version   = CASE WHEN $9 THEN EXCLUDED.app_version ELSE d.app_version END,
            locale        = CASE WHEN $10 THEN EXCLUDED.locale ELSE d.locale END,
            timezone      = CASE WHEN $11 THEN EXCLUDED.timezone ELSE d.timezone END,
            last_seen_at  = now(),
            signed_out_at = NULL
        RETURNING {DEVICE_COLUMNS}, (xmax = 0) AS inserted
        """,
        uid,
        device["device_id"],
        device["platform"],
        device.get("push_token"),
        device.get("app_version"),
        device.get("locale"),
        device.get("timezone"),
        "push_token" in sent,
        "app_version" in sent,
        "locale" in sent,
        "timezone" in sent,
    )


async def lock_push_token(conn: asyncpg.Connection, push_token: str) -> None:
    """Serialises sessions carrying the same push token (until the transaction ends):
    two users registering one token at once would otherwise each lock their own row and
    then wait for the other's in ``release_push_token``, a deadlock."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", push_token)


async def release_push_token(conn: asyncpg.Connection, push_token: str, keep_id: UUID) -> int:
    """A push token addresses one app installation. When it shows up on another row (the
    phone changed hands, or the app was reinstalled), the old row must stop receiving
    pushes: another person's reminders must never reach this phone."""
    result = await conn.execute(
        "UPDATE auth.devices SET push_token = NULL WHERE push_token = $1 AND id <> $2", push_token, keep_id
    )
    return int(result.split()[-1])


async def prune_devices(conn: asyncpg.Connection, uid: str, keep: int) -> None:
    await conn.execute(
        """
        DELETE FROM auth.devices WHERE id IN (
            SELECT id FROM auth.devices WHERE user_id = $1
            ORDER BY (signed_out_at IS NULL) DESC, last_seen_at DESC
            OFFSET $2
        )
        """,
        uid,
        keep,
    )


async def list_devices(conn: asyncpg.Connection, uid: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {DEVICE_COLUMNS} FROM auth.devices WHERE user_id = $1 AND signed_out_at IS NULL ORDER BY last_seen_at DESC, id",
        uid,
    )


async def sign_out_device(conn: asyncpg.Connection, uid: str, device_row_id: UUID) -> bool | None:
    """True: signed out now; False: it already was; None: no such device of this user."""
    row = await conn.fetchrow(
        """
        UPDATE auth.devices SET signed_out_at = coalesce(signed_out_at, now()), push_token = NULL
        WHERE id = $2 AND user_id = $1
        RETURNING (signed_out_at = now()) AS now_signed_out
        """,
        uid,
        device_row_id,
    )
    return None if row is None else bool(row["now_signed_out"])


async def delete_user_devices(conn: asyncpg.Connection, uid: str) -> int:
    result = await conn.execute("DELETE FROM auth.devices WHERE user_id = $1", uid)
    return int(result.split()[-1])


async def insert_audit(
    conn: asyncpg.Connection,
    *,
    actor: str,
    subject: str,
    action: str,
    detail: dict[str, Any] | None,
    request_id: str | None,
) -> None:
    await conn.execute(
        "INSERT INTO auth.audit_log (actor, subject, action, detail, request_id) VALUES ($1, $2, $3, $4, $5)",
        actor,
        subject,
        action,
        detail,
        request_id,
    )


async def delete_own_audit(conn: asyncpg.Connection, uid: str) -> None:
    """Erases the user's own trail; admin actions on the account (revocations) stay."""
    await conn.execute("DELETE FROM auth.audit_log WHERE subject = $1 AND actor = $1", uid)
