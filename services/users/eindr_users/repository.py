"""All SQL of the users service, one function per query.

Authorization lives here: every function that touches a user's rows takes the uid of the
caller (``Principal.uid``, from the verified internal token) and scopes its query to it.
No route passes a client-supplied uid down, except the admin-only plan change.
"""

from __future__ import annotations

from typing import Any

import asyncpg

PROFILE_COLUMNS = "id, display_name, avatar_url, email, phone, plan, created_at, updated_at"
PREFERENCE_COLUMNS = (
    "language, timezone, voice, quiet_hours_start, quiet_hours_end, default_lead_minutes, "
    "history_retention_days, notification_channels"
)
# Column names a PATCH may write: the only identifiers ever formatted into SQL.
_PROFILE_WRITABLE = frozenset({"display_name", "avatar_url", "email", "phone"})
_PREFERENCES_WRITABLE = frozenset(
    {
        "language",
        "timezone",
        "voice",
        "quiet_hours_start",
        "quiet_hours_end",
        "default_lead_minutes",
        "history_retention_days",
        "notification_channels",
    }
)


async def get_user(conn: asyncpg.Connection, uid: str, *, for_update: bool = False) -> asyncpg.Record | None:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(f"SELECT {PROFILE_COLUMNS} FROM users.users WHERE id = $1{lock}", uid)


async def insert_user_if_absent(
    conn: asyncpg.Connection, uid: str, fields: dict[str, str | None]
) -> asyncpg.Record | None:
    """The new row, or None when the user already exists (concurrent first logins race
    here; the primary key makes exactly one of them win)."""
    return await conn.fetchrow(
        f"""
        INSERT INTO users.users (id, display_name, avatar_url, email, phone)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (id) DO NOTHING
        RETURNING {PROFILE_COLUMNS}
        """,
        uid,
        fields.get("display_name"),
        fields.get("avatar_url"),
        fields.get("email"),
        fields.get("phone"),
    )


async def update_user(conn: asyncpg.Connection, uid: str, fields: dict[str, Any]) -> asyncpg.Record | None:
    assert fields and set(fields) <= _PROFILE_WRITABLE, fields
    names = sorted(fields)
    sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, start=2))
    return await conn.fetchrow(
        f"UPDATE users.users SET {sets}, updated_at = now() WHERE id = $1 RETURNING {PROFILE_COLUMNS}",
        uid,
        *(fields[n] for n in names),
    )


async def set_plan(conn: asyncpg.Connection, uid: str, plan: str) -> tuple[str, str] | None:
    """(old plan, new plan), or None when there is no such user."""
    row = await conn.fetchrow(
        """
        WITH old AS (SELECT plan FROM users.users WHERE id = $1 FOR UPDATE)
        UPDATE users.users u SET plan = $2, updated_at = CASE WHEN old.plan = $2 THEN u.updated_at ELSE now() END
        FROM old WHERE u.id = $1
        RETURNING old.plan AS old_plan, u.plan AS new_plan
        """,
        uid,
        plan,
    )
    return (row["old_plan"], row["new_plan"]) if row else None


async def delete_user(conn: asyncpg.Connection, uid: str) -> bool:
    """Deletes the user and (by cascade) their preferences."""
    return await conn.fetchval("DELETE FROM users.users WHERE id = $1 RETURNING true", uid) is not None


async def insert_default_preferences(conn: asyncpg.Connection, uid: str, language: str, timezone: str) -> None:
    await conn.execute(
        "INSERT INTO users.preferences (user_id, language, timezone) VALUES ($1, $2, $3) ON CONFLICT (user_id) DO NOTHING",
        uid,
        language,
        timezone,
    )


async def get_preferences(conn: asyncpg.Connection, uid: str, *, for_update: bool = False) -> asyncpg.Record | None:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(f"SELECT {PREFERENCE_COLUMNS} FROM users.preferences WHERE user_id = $1{lock}", uid)


async def update_preferences(conn: asyncpg.Connection, uid: str, fields: dict[str, Any]) -> asyncpg.Record | None:
    assert fields and set(fields) <= _PREFERENCES_WRITABLE, fields
    names = sorted(fields)
    sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, start=2))
    return await conn.fetchrow(
        f"UPDATE users.preferences SET {sets}, updated_at = now() WHERE user_id = $1 RETURNING {PREFERENCE_COLUMNS}",
        uid,
        *(fields[n] for n in names),
    )


async def insert_audit(
    conn: asyncpg.Connection,
    *,
    actor: str,
    subject: str,
    action: str,
    fields: list[str] | None = None,
    detail: dict[str, Any] | None = None,
    request_id: str | None,
) -> None:
    await conn.execute(
        "INSERT INTO users.audit_log (actor, subject, action, fields, detail, request_id) VALUES ($1, $2, $3, $4, $5, $6)",
        actor,
        subject,
        action,
        sorted(fields or []),
        detail,
        request_id,
    )


async def delete_own_audit(conn: asyncpg.Connection, uid: str) -> None:
    """Erases the user's own audit trail; admin actions on the account stay on record."""
    await conn.execute("DELETE FROM users.audit_log WHERE subject = $1 AND actor = $1", uid)


async def add_outbox(conn: asyncpg.Connection, event_type: str, payload: dict[str, Any]) -> int:
    return await conn.fetchval(
        "INSERT INTO users.outbox (event_type, payload) VALUES ($1, $2) RETURNING id", event_type, payload
    )


async def claim_outbox(conn: asyncpg.Connection, limit: int, *, wait: bool) -> list[asyncpg.Record]:
    """Oldest pending events, locked (call inside a transaction; delete them once
    published). ``wait=False`` skips rows another relay holds; ``wait=True`` waits for
    it to finish, so rows it published and deleted are gone when this returns."""
    lock = "FOR UPDATE" if wait else "FOR UPDATE SKIP LOCKED"
    return await conn.fetch(f"SELECT id, event_type, payload FROM users.outbox ORDER BY id LIMIT $1 {lock}", limit)


async def delete_outbox(conn: asyncpg.Connection, ids: list[int]) -> None:
    await conn.execute("DELETE FROM users.outbox WHERE id = ANY($1::bigint[])", ids)
