"""All SQL of the friends service, through asyncpg, one function per query.

The one authorization enforcement point: invites are read and answered only by their
inviter or invitee, grants are changed only by their owner, shares only by their owner
(and read by owner or friend), and nothing is returned across a block.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

INVITE_COLUMNS = "i.id, i.inviter_id, i.invitee_id, i.via, i.status, i.created_at, i.expires_at, i.responded_at"
SHARE_COLUMNS = "s.id, s.owner_id, s.friend_id, s.item_type, s.item_id, s.access, s.created_at, s.updated_at"


# --- blocks / friendship state ------------------------------------------------------------


async def blocked_between(conn: asyncpg.Connection, a: str, b: str) -> bool:
    return await conn.fetchval(
        """SELECT EXISTS (SELECT 1 FROM friends.blocks
                          WHERE (blocker_id = $1 AND blocked_id = $2) OR (blocker_id = $2 AND blocked_id = $1))""",
        a, b,
    )


async def has_blocked(conn: asyncpg.Connection, blocker: str, blocked: str) -> bool:
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM friends.blocks WHERE blocker_id = $1 AND blocked_id = $2)", blocker, blocked
    )


async def are_friends(conn: asyncpg.Connection, a: str, b: str) -> bool:
    return await conn.fetchval("SELECT EXISTS (SELECT 1 FROM friends.grants WHERE owner_id = $1 AND friend_id = $2)", a, b)


async def pair_tiers(conn: asyncpg.Connection, owner: str, viewer: str) -> tuple[str | None, str | None]:
    """(what owner grants viewer, what viewer grants owner)."""
    rows = await conn.fetch(
        """SELECT owner_id, tier FROM friends.grants
           WHERE (owner_id = $1 AND friend_id = $2) OR (owner_id = $2 AND friend_id = $1)""",
        owner, viewer,
    )
    tiers = {r["owner_id"]: r["tier"] for r in rows}
    return tiers.get(owner), tiers.get(viewer)


async def create_friendship(conn: asyncpg.Connection, a: str, b: str) -> None:
    await conn.execute(
        """INSERT INTO friends.grants (owner_id, friend_id) VALUES ($1, $2), ($2, $1)
           ON CONFLICT (owner_id, friend_id) DO NOTHING""",
        a, b,
    )


async def remove_friendship(conn: asyncpg.Connection, a: str, b: str) -> int:
    result = await conn.execute(
        "DELETE FROM friends.grants WHERE (owner_id = $1 AND friend_id = $2) OR (owner_id = $2 AND friend_id = $1)", a, b
    )
    return int(result.split()[-1])


async def set_tier(conn: asyncpg.Connection, owner: str, friend: str, tier: str) -> asyncpg.Record | None:
    """Returns (old tier, new tier) or None when they are not friends."""
    return await conn.fetchrow(
        """UPDATE friends.grants g SET tier = $3, updated_at = clock_timestamp()
           FROM (SELECT tier FROM friends.grants WHERE owner_id = $1 AND friend_id = $2 FOR UPDATE) old
           WHERE g.owner_id = $1 AND g.friend_id = $2
           RETURNING old.tier AS old_tier, g.tier AS new_tier""",
        owner, friend, tier,
    )


async def list_friends(conn: asyncpg.Connection, uid: str, limit: int, after: tuple[datetime, str] | None) -> list[asyncpg.Record]:
    args: list[Any] = [uid, limit]
    keyset = ""
    if after is not None:
        args += [after[0], after[1]]
        keyset = "AND (mine.since, mine.friend_id) < ($3, $4)"
    return await conn.fetch(
        f"""SELECT mine.friend_id AS user_id, mine.tier AS my_tier, theirs.tier AS their_tier, mine.since,
                   d.display_name
            FROM friends.grants mine
            JOIN friends.grants theirs ON theirs.owner_id = mine.friend_id AND theirs.friend_id = mine.owner_id
            LEFT JOIN friends.directory d ON d.user_id = mine.friend_id
            WHERE mine.owner_id = $1 {keyset}
            ORDER BY mine.since DESC, mine.friend_id DESC
            LIMIT $2""",
        *args,
    )


async def get_friend(conn: asyncpg.Connection, uid: str, friend: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT mine.friend_id AS user_id, mine.tier AS my_tier, theirs.tier AS their_tier, mine.since, d.display_name
           FROM friends.grants mine
           JOIN friends.grants theirs ON theirs.owner_id = mine.friend_id AND theirs.friend_id = mine.owner_id
           LEFT JOIN friends.directory d ON d.user_id = mine.friend_id
           WHERE mine.owner_id = $1 AND mine.friend_id = $2""",
        uid, friend,
    )


async def friend_ids(conn: asyncpg.Connection, uid: str) -> list[str]:
    return [r["friend_id"] for r in await conn.fetch("SELECT friend_id FROM friends.grants WHERE owner_id = $1", uid)]


async def ledger_peers(conn: asyncpg.Connection, uid: str) -> list[str]:
    """Friends with whom ``uid`` shares ledgers: both grants are 'trusted'."""
    rows = await conn.fetch(
        """SELECT mine.friend_id FROM friends.grants mine
           JOIN friends.grants theirs ON theirs.owner_id = mine.friend_id AND theirs.friend_id = mine.owner_id
           WHERE mine.owner_id = $1 AND mine.tier = 'trusted' AND theirs.tier = 'trusted'
           ORDER BY mine.friend_id""",
        uid,
    )
    return [r["friend_id"] for r in rows]


# --- invites ----------------------------------------------------------------------------


async def insert_invite(
    conn: asyncpg.Connection, *, inviter: str, invitee: str | None, via: str, code_hash: bytes | None, expires_at: datetime
) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""INSERT INTO friends.invites AS i (id, inviter_id, invitee_id, via, code_hash, expires_at)
            VALUES ($1, $2, $3, $4, $5, $6) RETURNING {INVITE_COLUMNS}""",
        uuid.uuid4(), inviter, invitee, via, code_hash, expires_at,
    )


async def pending_invite(conn: asyncpg.Connection, inviter: str, invitee: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {INVITE_COLUMNS} FROM friends.invites i WHERE inviter_id = $1 AND invitee_id = $2 AND status = 'pending'",
        inviter, invitee,
    )


async def invite_for_party(conn: asyncpg.Connection, uid: str, invite_id: uuid.UUID, *, for_update: bool = False) -> asyncpg.Record | None:
    """An invite the caller sent or received; nobody else's."""
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(
        f"SELECT {INVITE_COLUMNS} FROM friends.invites i WHERE i.id = $2 AND (i.inviter_id = $1 OR i.invitee_id = $1){lock}",
        uid, invite_id,
    )


async def invite_by_code(conn: asyncpg.Connection, code_hash: bytes) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {INVITE_COLUMNS} FROM friends.invites i WHERE i.code_hash = $1 FOR UPDATE", code_hash
    )


async def answer_invite(conn: asyncpg.Connection, invite_id: uuid.UUID, status: str, invitee: str | None = None) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""UPDATE friends.invites i SET status = $2, responded_at = clock_timestamp(), invitee_id = coalesce(i.invitee_id, $3)
            WHERE i.id = $1 RETURNING {INVITE_COLUMNS}""",
        invite_id, status, invitee,
    )


async def close_pending_between(conn: asyncpg.Connection, a: str, b: str, status: str = "cancelled") -> None:
    await conn.execute(
        """UPDATE friends.invites SET status = $3, responded_at = clock_timestamp()
           WHERE status = 'pending' AND ((inviter_id = $1 AND invitee_id = $2) OR (inviter_id = $2 AND invitee_id = $1))""",
        a, b, status,
    )


async def list_invites(
    conn: asyncpg.Connection, uid: str, direction: str, status: str | None, limit: int, after: tuple[datetime, uuid.UUID] | None
) -> list[asyncpg.Record]:
    column = "invitee_id" if direction == "incoming" else "inviter_id"
    args: list[Any] = [uid, limit]
    where = ""
    if status is not None:
        args.append(status)
        where += f" AND i.status = ${len(args)}"
    if after is not None:
        args += [after[0], after[1]]
        where += f" AND (i.created_at, i.id) < (${len(args) - 1}, ${len(args)})"
    if direction == "incoming":
        # Nothing from someone the caller blocked (or who blocked them) shows.
        where += " AND NOT EXISTS (SELECT 1 FROM friends.blocks b WHERE (b.blocker_id = $1 AND b.blocked_id = i.inviter_id) OR (b.blocker_id = i.inviter_id AND b.blocked_id = $1))"
    return await conn.fetch(
        f"SELECT {INVITE_COLUMNS} FROM friends.invites i WHERE i.{column} = $1{where} ORDER BY i.created_at DESC, i.id DESC LIMIT $2",
        *args,
    )


# --- blocks -----------------------------------------------------------------------------


async def insert_block(conn: asyncpg.Connection, blocker: str, blocked: str) -> asyncpg.Record:
    return await conn.fetchrow(
        """INSERT INTO friends.blocks (blocker_id, blocked_id) VALUES ($1, $2)
           ON CONFLICT (blocker_id, blocked_id) DO UPDATE SET blocker_id = EXCLUDED.blocker_id
           RETURNING blocked_id AS user_id, created_at""",
        blocker, blocked,
    )


async def delete_block(conn: asyncpg.Connection, blocker: str, blocked: str) -> int:
    result = await conn.execute("DELETE FROM friends.blocks WHERE blocker_id = $1 AND blocked_id = $2", blocker, blocked)
    return int(result.split()[-1])


async def list_blocks(conn: asyncpg.Connection, blocker: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT blocked_id AS user_id, created_at FROM friends.blocks WHERE blocker_id = $1 ORDER BY created_at DESC", blocker
    )


# --- shares -----------------------------------------------------------------------------


async def upsert_share(conn: asyncpg.Connection, owner: str, friend: str, item_type: str, item_id: str, access: str) -> tuple[asyncpg.Record, bool]:
    row = await conn.fetchrow(
        f"""INSERT INTO friends.shares AS s (id, owner_id, friend_id, item_type, item_id, access)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (owner_id, item_type, item_id, friend_id)
            DO UPDATE SET access = EXCLUDED.access, updated_at = clock_timestamp()
            RETURNING {SHARE_COLUMNS}, (xmax = 0) AS inserted""",
        uuid.uuid4(), owner, friend, item_type, item_id, access,
    )
    return row, row["inserted"]


async def share_for_party(conn: asyncpg.Connection, uid: str, share_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {SHARE_COLUMNS} FROM friends.shares s WHERE s.id = $2 AND (s.owner_id = $1 OR s.friend_id = $1)", uid, share_id
    )


async def update_share_access(conn: asyncpg.Connection, owner: str, share_id: uuid.UUID, access: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""UPDATE friends.shares s SET access = $3, updated_at = clock_timestamp()
            WHERE s.id = $2 AND s.owner_id = $1 RETURNING {SHARE_COLUMNS}""",
        owner, share_id, access,
    )


async def delete_share(conn: asyncpg.Connection, owner: str, share_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"DELETE FROM friends.shares s WHERE s.id = $2 AND s.owner_id = $1 RETURNING {SHARE_COLUMNS}", owner, share_id
    )


async def delete_shares_between(conn: asyncpg.Connection, a: str, b: str) -> int:
    result = await conn.execute(
        "DELETE FROM friends.shares WHERE (owner_id = $1 AND friend_id = $2) OR (owner_id = $2 AND friend_id = $1)", a, b
    )
    return int(result.split()[-1])


async def list_shares(
    conn: asyncpg.Connection, uid: str, direction: str, item_type: str | None, limit: int, after: tuple[datetime, uuid.UUID] | None
) -> list[asyncpg.Record]:
    """Outgoing: what the caller shares. Incoming: what friends share with the caller —
    only while they are still friends (a removal or block hides everything at once)."""
    column = "friend_id" if direction == "incoming" else "owner_id"
    args: list[Any] = [uid, limit]
    where = ""
    if item_type is not None:
        args.append(item_type)
        where += f" AND s.item_type = ${len(args)}"
    if after is not None:
        args += [after[0], after[1]]
        where += f" AND (s.created_at, s.id) < (${len(args) - 1}, ${len(args)})"
    where += " AND EXISTS (SELECT 1 FROM friends.grants g WHERE g.owner_id = s.owner_id AND g.friend_id = s.friend_id)"
    return await conn.fetch(
        f"SELECT {SHARE_COLUMNS} FROM friends.shares s WHERE s.{column} = $1{where} ORDER BY s.created_at DESC, s.id DESC LIMIT $2",
        *args,
    )


async def item_access(conn: asyncpg.Connection, owner: str, viewer: str, item_type: str, item_id: str) -> str | None:
    return await conn.fetchval(
        """SELECT s.access FROM friends.shares s
           WHERE s.owner_id = $1 AND s.friend_id = $2 AND s.item_type = $3 AND s.item_id = $4
             AND EXISTS (SELECT 1 FROM friends.grants g WHERE g.owner_id = $1 AND g.friend_id = $2)""",
        owner, viewer, item_type, item_id,
    )


# --- discovery --------------------------------------------------------------------------


async def upsert_directory(conn: asyncpg.Connection, uid: str, discoverable: bool, display_name: str | None, avatar_url: str | None) -> asyncpg.Record:
    return await conn.fetchrow(
        """INSERT INTO friends.directory (user_id, discoverable, display_name, avatar_url) VALUES ($1, $2, $3, $4)
           ON CONFLICT (user_id) DO UPDATE SET discoverable = EXCLUDED.discoverable,
               display_name = coalesce(EXCLUDED.display_name, friends.directory.display_name),
               avatar_url = coalesce(EXCLUDED.avatar_url, friends.directory.avatar_url),
               updated_at = clock_timestamp()
           RETURNING user_id, discoverable, display_name""",
        uid, discoverable, display_name, avatar_url,
    )


async def get_directory(conn: asyncpg.Connection, uid: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT user_id, discoverable, display_name FROM friends.directory WHERE user_id = $1", uid)


async def replace_identities(conn: asyncpg.Connection, uid: str, identities: list[tuple[bytes, str]]) -> None:
    """The caller's verified identifiers, as stored hashes. A number that moved to another
    account (recycled phone numbers) now belongs to the one that verified it last."""
    await conn.execute("DELETE FROM friends.identities WHERE user_id = $1", uid)
    if identities:
        await conn.executemany(
            """INSERT INTO friends.identities (hash, user_id, kind) VALUES ($1, $2, $3)
               ON CONFLICT (hash) DO UPDATE SET user_id = EXCLUDED.user_id, kind = EXCLUDED.kind""",
            [(h, uid, kind) for h, kind in identities],
        )


async def identity_kinds(conn: asyncpg.Connection, uid: str) -> list[str]:
    return [r["kind"] for r in await conn.fetch("SELECT kind FROM friends.identities WHERE user_id = $1 ORDER BY kind", uid)]


async def match_hashes(conn: asyncpg.Connection, caller: str, hashes: list[bytes]) -> list[asyncpg.Record]:
    """Discoverable users (other than the caller, and not across a block) whose stored
    identifier hash is among ``hashes``."""
    return await conn.fetch(
        """SELECT i.hash, d.user_id, d.display_name, d.avatar_url,
                  EXISTS (SELECT 1 FROM friends.grants g WHERE g.owner_id = $1 AND g.friend_id = d.user_id) AS is_friend
           FROM friends.identities i
           JOIN friends.directory d ON d.user_id = i.user_id
           WHERE i.hash = ANY($2::bytea[]) AND d.discoverable AND d.user_id <> $1
             AND NOT EXISTS (SELECT 1 FROM friends.blocks b
                             WHERE (b.blocker_id = d.user_id AND b.blocked_id = $1)
                                OR (b.blocker_id = $1 AND b.blocked_id = d.user_id))""",
        caller, hashes,
    )


# --- audit, outbox, erasure -------------------------------------------------------------


async def add_audit(conn: asyncpg.Connection, actor: str, subject: str | None, action: str, request_id: str | None) -> None:
    await conn.execute(
        "INSERT INTO friends.audit_log (actor, subject, action, request_id) VALUES ($1, $2, $3, $4)", actor, subject, action, request_id
    )


async def add_outbox(conn: asyncpg.Connection, event_type: str, payload: dict[str, Any]) -> int:
    return await conn.fetchval("INSERT INTO friends.outbox (event_type, payload) VALUES ($1, $2) RETURNING id", event_type, payload)


async def claim_outbox(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT id, event_type, payload FROM friends.outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED", limit)


async def delete_outbox(conn: asyncpg.Connection, ids: list[int]) -> None:
    await conn.execute("DELETE FROM friends.outbox WHERE id = ANY($1::bigint[])", ids)


async def erase_user(conn: asyncpg.Connection, uid: str) -> dict[str, int]:
    counts = {}
    for name, sql in (
        ("grants", "DELETE FROM friends.grants WHERE owner_id = $1 OR friend_id = $1"),
        ("invites", "DELETE FROM friends.invites WHERE inviter_id = $1 OR invitee_id = $1"),
        ("blocks", "DELETE FROM friends.blocks WHERE blocker_id = $1 OR blocked_id = $1"),
        ("shares", "DELETE FROM friends.shares WHERE owner_id = $1 OR friend_id = $1"),
        ("directory", "DELETE FROM friends.directory WHERE user_id = $1"),
        ("identities", "DELETE FROM friends.identities WHERE user_id = $1"),
        ("audit", "DELETE FROM friends.audit_log WHERE actor = $1 OR subject = $1"),
    ):
        counts[name] = int((await conn.execute(sql, uid)).split()[-1])
    return counts
