"""Use cases of the friends service: each one transaction — rules from ``domain``, SQL from
``repository`` (scoped to the caller), events to the outbox, then the permission cache
bumped for everyone the change touched."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from eindr_common.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    ServiceUnavailable,
)
from eindr_common.identity import Principal
from eindr_common.observability import current_request_id
from eindr_common.pagination import PageParams, encode_cursor
from redis.exceptions import RedisError

from . import cache, domain, metrics, outbox, repository
from .schemas import (
    BlockCreate,
    ContactMatchRequest,
    DiscoveryUpdate,
    InviteCreate,
    ShareCreate,
)
from .settings import FriendsSettings

log = logging.getLogger("eindr.friends.service")


@dataclass
class Deps:
    pool: asyncpg.Pool
    redis: aioredis.Redis
    settings: FriendsSettings

    @property
    def pepper(self) -> bytes:
        return self.settings.friends_hash_pepper.encode()


def _uuid(raw: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound(f"No such {what}", code=f"{what}_not_found") from None


def _now() -> datetime:
    return datetime.now(UTC)


async def _audit(conn: asyncpg.Connection, actor: str, subject: str | None, action: str) -> None:
    await repository.add_audit(conn, actor, subject, action, current_request_id())


async def _after_commit(deps: Deps, *uids: str) -> None:
    await cache.bump(deps.redis, *uids)
    await outbox.flush_quietly(deps.pool, deps.redis)


def _keyset(page: PageParams, kind: type) -> tuple[datetime, Any] | None:
    if page.after is None:
        return None
    try:
        at, key = page.after
        return datetime.fromisoformat(at), kind(key)
    except (ValueError, TypeError):
        raise BadRequest("cursor is not one this API issued", code="invalid_cursor", errors=[{"field": "cursor", "message": "malformed cursor"}]) from None


def invite_json(row: asyncpg.Record, **extra: Any) -> dict[str, Any]:
    status = row["status"]
    if status == "pending" and row["expires_at"] <= _now():
        status = "expired"
    return {
        "id": str(row["id"]), "inviter_id": row["inviter_id"], "invitee_id": row["invitee_id"], "via": row["via"],
        "status": status, "created_at": row["created_at"], "expires_at": row["expires_at"],
        "responded_at": row["responded_at"], "code": None, "link": None, **extra,
    }


def share_json(row: asyncpg.Record) -> dict[str, Any]:
    return {k: (str(row[k]) if k == "id" else row[k]) for k in ("id", "owner_id", "friend_id", "item_type", "item_id", "access", "created_at", "updated_at")}


def friend_json(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "user_id": row["user_id"], "my_tier": row["my_tier"], "their_tier": row["their_tier"],
        "shares_ledger": domain.shares_ledger(row["my_tier"], row["their_tier"]),
        "display_name": row["display_name"], "since": row["since"],
    }


# --- invites ----------------------------------------------------------------------------


async def _check_can_invite(conn: asyncpg.Connection, me: str, other: str) -> None:
    if other == me:
        raise BadRequest("You cannot invite yourself", code="self_invite", errors=[{"field": "user_id", "message": "must be someone else"}])
    if await repository.has_blocked(conn, me, other):
        raise Conflict("You blocked this user; unblock them first", code="user_blocked")
    if await repository.has_blocked(conn, other, me):
        # Not said why: a blocked user learns nothing more than that they cannot invite.
        raise Forbidden("You cannot invite this user", code="cannot_invite")
    if await repository.are_friends(conn, me, other):
        raise Conflict("You are already friends", code="already_friends")
    theirs = await repository.pending_invite(conn, other, me)
    if theirs is not None and theirs["expires_at"] > _now():
        raise Conflict(
            "This user already invited you; accept their invite", code="invite_pending_from_them", extra={"invite_id": str(theirs["id"])}
        )


async def _consume_match_budget(deps: Deps, uid: str, n: int) -> int:
    """Counts ``n`` hashes against the caller's daily budget (shared by contact matching
    and invites by contact hash); refuses past it. Returns what remains today."""
    now = _now()
    key = f"eindr:friends:match:{uid}:{now:%Y%m%d}"
    limit = deps.settings.friends_match_daily_limit
    try:
        used = await deps.redis.incrby(key, n)
        if used == n:
            await deps.redis.expire(key, 26 * 3600)
        if used > limit:
            await deps.redis.decrby(key, n)
            metrics.MATCH_REFUSED.inc()
            tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
            retry = max(1, int((tomorrow - now).total_seconds()))
            raise RateLimited(
                f"Contact matching is limited to {limit} hashes a day; {max(0, limit - (used - n))} left today",
                code="contact_match_limit",
                headers={"Retry-After": str(retry)},
                extra={"limit": limit, "remaining": max(0, limit - (used - n))},
            )
    except RedisError as exc:
        # The limit is what stops enumeration: no limit, no matching.
        raise ServiceUnavailable("Contact matching is unavailable right now", code="rate_limiter_unavailable") from exc
    return limit - used


async def create_invite(deps: Deps, principal: Principal, body: InviteCreate) -> dict[str, Any]:
    me = principal.uid
    now = _now()
    if body.shareable:
        code = domain.new_invite_code()
        ttl = body.expires_in_s or deps.settings.friends_invite_code_ttl_s
        ttl = min(ttl, deps.settings.friends_invite_code_max_ttl_s)
        async with deps.pool.acquire() as conn, conn.transaction():
            row = await repository.insert_invite(
                conn, inviter=me, invitee=None, via="code", code_hash=domain.code_digest(code), expires_at=now + timedelta(seconds=ttl)
            )
            await _audit(conn, me, None, "invite.code_created")
        metrics.INVITES.labels("code").inc()
        return invite_json(row, code=code, link=deps.settings.friends_invite_link_base + code)
    if body.expires_in_s is not None:
        raise BadRequest("expires_in_s applies to shareable invites only", code="validation_error", errors=[{"field": "expires_in_s", "message": "only with shareable: true"}])
    via = "user_id"
    target = body.user_id
    if body.contact_hash is not None:
        via = "contact_hash"
        await _consume_match_budget(deps, me, 1)
        async with deps.pool.acquire() as conn:
            found = await repository.match_hashes(conn, me, [domain.stored_hash(deps.pepper, body.contact_hash)])
        if not found:
            raise NotFound("Nobody findable has this contact", code="contact_not_found")
        target = found[0]["user_id"]
    assert target is not None
    async with deps.pool.acquire() as conn:
        try:
            async with conn.transaction():
                await _check_can_invite(conn, me, target)
                row = await repository.insert_invite(
                    conn, inviter=me, invitee=target, via=via, code_hash=None,
                    expires_at=now + timedelta(seconds=deps.settings.friends_invite_ttl_s),
                )
                await _audit(conn, me, target, "invite.created")
                await repository.add_outbox(conn, "friend.invited", {"invite_id": str(row["id"]), "inviter_id": me, "invitee_id": target})
        except asyncpg.UniqueViolationError:
            existing = await repository.pending_invite(conn, me, target)
            if existing is not None and existing["expires_at"] <= now:
                # An expired invite no longer blocks a new one.
                async with conn.transaction():
                    await repository.answer_invite(conn, existing["id"], "cancelled")
                return await create_invite(deps, principal, body)
            raise Conflict(
                "You already invited this user", code="invite_exists", extra={"invite_id": str(existing["id"]) if existing else None}
            ) from None
    await outbox.flush_quietly(deps.pool, deps.redis)
    metrics.INVITES.labels(via).inc()
    return invite_json(row)


async def list_invites(deps: Deps, principal: Principal, direction: str, status: str | None, page: PageParams) -> dict[str, Any]:
    async with deps.pool.acquire() as conn:
        rows = await repository.list_invites(conn, principal.uid, direction, status, page.limit + 1, _keyset(page, uuid.UUID))
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return {
        "items": [invite_json(r) for r in rows],
        "next_cursor": encode_cursor([rows[-1]["created_at"].isoformat(), str(rows[-1]["id"])]) if more and rows else None,
    }


async def _befriend(conn: asyncpg.Connection, a: str, b: str, invite_id: uuid.UUID) -> None:
    await repository.create_friendship(conn, a, b)
    metrics.FRIENDSHIPS.inc()
    # Any invite the other way is moot now.
    await repository.close_pending_between(conn, a, b, "accepted")
    await repository.add_outbox(conn, "friend.accepted", {"user_ids": sorted([a, b]), "invite_id": str(invite_id)})


async def answer_invite(deps: Deps, principal: Principal, invite_id: str, action: str) -> dict[str, Any]:
    """accept / decline (the invitee) or cancel (the inviter)."""
    iid = _uuid(invite_id, "invite")
    me = principal.uid
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await repository.invite_for_party(conn, me, iid, for_update=True)
        if row is None:
            raise NotFound("No such invite", code="invite_not_found")
        other = row["inviter_id"] if row["invitee_id"] == me else row["invitee_id"]
        if action in ("accept", "decline") and row["invitee_id"] != me:
            raise Forbidden(f"Only the invited user can {action} an invite", code="not_invitee")
        if action == "cancel" and row["inviter_id"] != me:
            raise Forbidden("Only the inviter can cancel an invite", code="not_inviter")
        if row["status"] != "pending":
            raise Conflict(f"This invite was already {row['status']}", code="invite_not_pending")
        if row["expires_at"] <= _now():
            raise Conflict("This invite has expired", code="invite_expired")
        if action == "accept":
            if await repository.blocked_between(conn, me, row["inviter_id"]):
                raise Forbidden("You cannot accept this invite", code="cannot_befriend")
            updated = await repository.answer_invite(conn, iid, "accepted")
            await _befriend(conn, me, row["inviter_id"], iid)
        else:
            updated = await repository.answer_invite(conn, iid, "declined" if action == "decline" else "cancelled")
        await _audit(conn, me, other, f"invite.{action}")
    await _after_commit(deps, me, other)
    return invite_json(updated)


async def redeem_code(deps: Deps, principal: Principal, raw_code: str) -> dict[str, Any]:
    code = domain.normalize_invite_code(raw_code)
    if code is None:
        raise BadRequest("code: not an invite code", code="invalid_invite_code", errors=[{"field": "code", "message": f"{domain.INVITE_CODE_LENGTH} letters/digits"}])
    me = principal.uid
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await repository.invite_by_code(conn, domain.code_digest(code))
        if row is None:
            raise NotFound("No such invite code", code="invite_not_found")
        inviter = row["inviter_id"]
        if inviter == me:
            raise BadRequest("This is your own invite code", code="self_invite", errors=[{"field": "code", "message": "your own code"}])
        if row["status"] != "pending":
            raise Conflict("This invite code was already used", code="invite_used")
        if row["expires_at"] <= _now():
            raise Conflict("This invite code has expired", code="invite_expired")
        if await repository.blocked_between(conn, me, inviter):
            raise Forbidden("You cannot use this invite code", code="cannot_befriend")
        if await repository.are_friends(conn, me, inviter):
            raise Conflict("You are already friends", code="already_friends")
        updated = await repository.answer_invite(conn, row["id"], "accepted", invitee=me)
        await _befriend(conn, me, inviter, row["id"])
        await _audit(conn, me, inviter, "invite.redeemed")
    await _after_commit(deps, me, inviter)
    return invite_json(updated)


# --- friends and tiers ------------------------------------------------------------------


async def list_friends(deps: Deps, principal: Principal, page: PageParams) -> dict[str, Any]:
    async with deps.pool.acquire() as conn:
        rows = await repository.list_friends(conn, principal.uid, page.limit + 1, _keyset(page, str))
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return {
        "items": [friend_json(r) for r in rows],
        "next_cursor": encode_cursor([rows[-1]["since"].isoformat(), rows[-1]["user_id"]]) if more and rows else None,
    }


async def get_friend(deps: Deps, principal: Principal, friend_id: str) -> dict[str, Any]:
    async with deps.pool.acquire() as conn:
        row = await repository.get_friend(conn, principal.uid, friend_id)
    if row is None:
        raise NotFound("Not a friend of yours", code="friend_not_found")
    return friend_json(row)


async def set_tier(deps: Deps, principal: Principal, friend_id: str, tier: str) -> dict[str, Any]:
    me = principal.uid
    async with deps.pool.acquire() as conn, conn.transaction():
        changed = await repository.set_tier(conn, me, friend_id, tier)
        if changed is None:
            raise NotFound("Not a friend of yours", code="friend_not_found")
        if changed["old_tier"] != tier:
            metrics.TIER_CHANGES.labels(tier).inc()
            await _audit(conn, me, friend_id, f"permission.{tier}")
            await repository.add_outbox(
                conn, "permission.changed", {"owner_id": me, "friend_id": friend_id, "old_tier": changed["old_tier"], "tier": tier}
            )
        row = await repository.get_friend(conn, me, friend_id)
    await _after_commit(deps, me, friend_id)
    return friend_json(row)


async def remove_friend(deps: Deps, principal: Principal, friend_id: str) -> None:
    me = principal.uid
    async with deps.pool.acquire() as conn, conn.transaction():
        if await repository.remove_friendship(conn, me, friend_id) == 0:
            raise NotFound("Not a friend of yours", code="friend_not_found")
        await repository.delete_shares_between(conn, me, friend_id)
        await _audit(conn, me, friend_id, "friend.removed")
        await repository.add_outbox(conn, "friend.removed", {"user_ids": sorted([me, friend_id]), "by": me, "reason": "removed"})
    await _after_commit(deps, me, friend_id)


async def block(deps: Deps, principal: Principal, body: BlockCreate) -> dict[str, Any]:
    """Ends the friendship, every pending invite and every share between the two, and keeps
    the blocked user from inviting, matching or seeing anything of the blocker again."""
    me, other = principal.uid, body.user_id
    if other == me:
        raise BadRequest("You cannot block yourself", code="self_block", errors=[{"field": "user_id", "message": "must be someone else"}])
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await repository.insert_block(conn, me, other)
        were_friends = await repository.remove_friendship(conn, me, other) > 0
        await repository.delete_shares_between(conn, me, other)
        await repository.close_pending_between(conn, me, other, "cancelled")
        await _audit(conn, me, other, "user.blocked")
        if were_friends:
            await repository.add_outbox(conn, "friend.removed", {"user_ids": sorted([me, other]), "by": me, "reason": "blocked"})
    await _after_commit(deps, me, other)
    return dict(row)


async def unblock(deps: Deps, principal: Principal, user_id: str) -> None:
    async with deps.pool.acquire() as conn, conn.transaction():
        if await repository.delete_block(conn, principal.uid, user_id) == 0:
            raise NotFound("You have not blocked this user", code="block_not_found")
        await _audit(conn, principal.uid, user_id, "user.unblocked")
    await _after_commit(deps, principal.uid, user_id)


async def list_blocks(deps: Deps, principal: Principal) -> list[dict[str, Any]]:
    async with deps.pool.acquire() as conn:
        return [dict(r) for r in await repository.list_blocks(conn, principal.uid)]


# --- shares -----------------------------------------------------------------------------


async def share(deps: Deps, principal: Principal, body: ShareCreate) -> tuple[dict[str, Any], bool]:
    """Shares one of the caller's items with a friend. Only the owning service knows whose
    item it is: it honours a share only when the share's owner is the item's owner, so a
    share of someone else's item id grants nothing."""
    me = principal.uid
    if body.friend_id == me:
        raise BadRequest("You cannot share with yourself", code="self_share", errors=[{"field": "friend_id", "message": "must be someone else"}])
    async with deps.pool.acquire() as conn, conn.transaction():
        if not await repository.are_friends(conn, me, body.friend_id):
            raise Forbidden("You can share only with friends", code="not_friends")
        row, created = await repository.upsert_share(conn, me, body.friend_id, body.item_type, body.item_id, body.access)
        await _audit(conn, me, body.friend_id, "share.created" if created else "share.updated")
        await repository.add_outbox(conn, "share.created" if created else "share.updated", {**_share_event(row)})
    await _after_commit(deps, me, body.friend_id)
    return share_json(row), created


def _share_event(row: asyncpg.Record) -> dict[str, Any]:
    return {"share_id": str(row["id"]), "owner_id": row["owner_id"], "friend_id": row["friend_id"], "item_type": row["item_type"], "item_id": row["item_id"], "access": row["access"]}


async def get_share(deps: Deps, principal: Principal, share_id: str) -> dict[str, Any]:
    sid = _uuid(share_id, "share")
    async with deps.pool.acquire() as conn:
        row = await repository.share_for_party(conn, principal.uid, sid)
        if row is None or (row["friend_id"] == principal.uid and not await repository.are_friends(conn, row["owner_id"], principal.uid)):
            raise NotFound("No such share", code="share_not_found")
    return share_json(row)


async def change_share(deps: Deps, principal: Principal, share_id: str, access: str) -> dict[str, Any]:
    sid = _uuid(share_id, "share")
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await repository.update_share_access(conn, principal.uid, sid, access)
        if row is None:
            raise NotFound("No such share of yours", code="share_not_found")
        await _audit(conn, principal.uid, row["friend_id"], "share.updated")
        await repository.add_outbox(conn, "share.updated", _share_event(row))
    await _after_commit(deps, principal.uid, row["friend_id"])
    return share_json(row)


async def revoke_share(deps: Deps, principal: Principal, share_id: str) -> None:
    sid = _uuid(share_id, "share")
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await repository.delete_share(conn, principal.uid, sid)
        if row is None:
            raise NotFound("No such share of yours", code="share_not_found")
        await _audit(conn, principal.uid, row["friend_id"], "share.revoked")
        await repository.add_outbox(conn, "share.revoked", _share_event(row))
    await _after_commit(deps, principal.uid, row["friend_id"])


async def list_shares(deps: Deps, principal: Principal, direction: str, item_type: str | None, page: PageParams) -> dict[str, Any]:
    async with deps.pool.acquire() as conn:
        rows = await repository.list_shares(conn, principal.uid, direction, item_type, page.limit + 1, _keyset(page, uuid.UUID))
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return {
        "items": [share_json(r) for r in rows],
        "next_cursor": encode_cursor([rows[-1]["created_at"].isoformat(), str(rows[-1]["id"])]) if more and rows else None,
    }


# --- discovery and contact matching -----------------------------------------------------


def verified_identifiers(principal: Principal) -> list[tuple[str, str]]:
    """(kind, normalised identifier) from the verified sign-in claims only: a phone number
    in a Firebase token was verified by SMS; an email counts only with email_verified."""
    out: list[tuple[str, str]] = []
    claims = principal.claims or {}
    phone = claims.get("phone_number")
    if isinstance(phone, str) and (e164 := domain.normalize_phone(phone)):
        out.append(("phone", e164))
    email = claims.get("email")
    if isinstance(email, str) and claims.get("email_verified") is True and (normalized := domain.normalize_email(email)):
        out.append(("email", normalized))
    return out


async def update_discovery(deps: Deps, principal: Principal, body: DiscoveryUpdate) -> dict[str, Any]:
    me = principal.uid
    identities = [
        (domain.stored_hash(deps.pepper, domain.client_hash(identifier)), kind) for kind, identifier in verified_identifiers(principal)
    ]
    claims = principal.claims or {}
    name = body.display_name or (claims.get("name") if isinstance(claims.get("name"), str) else None)
    avatar = claims.get("picture") if isinstance(claims.get("picture"), str) else None
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await repository.upsert_directory(conn, me, body.discoverable, (name or None) and name[:100], avatar and avatar[:2048])
        await repository.replace_identities(conn, me, identities)
        await _audit(conn, me, me, "discovery.updated")
        kinds = await repository.identity_kinds(conn, me)
    return {"discoverable": row["discoverable"], "display_name": row["display_name"], "identifiers": kinds}


async def get_discovery(deps: Deps, principal: Principal) -> dict[str, Any]:
    async with deps.pool.acquire() as conn:
        row = await repository.get_directory(conn, principal.uid)
        kinds = await repository.identity_kinds(conn, principal.uid)
    return {"discoverable": bool(row and row["discoverable"]), "display_name": row["display_name"] if row else None, "identifiers": kinds}


async def match_contacts(deps: Deps, principal: Principal, body: ContactMatchRequest) -> dict[str, Any]:
    """Which of the uploaded hashes belong to discoverable users. The upload is used for
    this lookup only and never stored or logged."""
    limit = deps.settings.friends_match_max_batch
    if len(body.hashes) > limit:
        raise BadRequest(
            f"hashes: at most {limit} per request", code="too_many_hashes",
            errors=[{"field": "hashes", "message": f"at most {limit} hashes per request"}],
        )
    unique = list(dict.fromkeys(body.hashes))
    remaining = await _consume_match_budget(deps, principal.uid, len(unique))
    metrics.MATCH_HASHES.inc(len(unique))
    pepper = deps.pepper
    by_stored = {domain.stored_hash(pepper, h): h for h in unique}
    async with deps.pool.acquire() as conn:
        rows = await repository.match_hashes(conn, principal.uid, list(by_stored))
    matches = [
        {"hash": by_stored[bytes(r["hash"])], "user_id": r["user_id"], "display_name": r["display_name"], "avatar_url": r["avatar_url"], "is_friend": r["is_friend"]}
        for r in rows
    ]
    return {"matches": matches, "remaining_today": remaining}


# --- internal: the permission answers other services ask for ---------------------------


def _check_party(principal: Principal, *uids: str) -> None:
    """The calling service carries the end user's identity; it may ask only about
    relations that user is part of."""
    if principal.uid not in uids:
        raise Forbidden("The caller may ask only about their own relations", code="not_a_party")


async def permission(deps: Deps, principal: Principal, owner: str, viewer: str, item_type: str | None, item_id: str | None) -> dict[str, Any]:
    _check_party(principal, owner, viewer)

    async def load() -> dict[str, Any]:
        async with deps.pool.acquire() as conn:
            tier, reverse = await repository.pair_tiers(conn, owner, viewer)
            blocked = await repository.blocked_between(conn, owner, viewer) if owner != viewer else False
        return {"tier": tier, "reverse_tier": reverse, "blocked": blocked}

    base = await cache.cached(deps.redis, f"perm:{owner}:{viewer}", [owner, viewer], deps.settings.friends_cache_ttl_s, load)
    friends = base["tier"] is not None
    result = {
        "owner_id": owner, "viewer_id": viewer, "friends": friends, "blocked": base["blocked"],
        "tier": base["tier"], "reverse_tier": base["reverse_tier"],
        "can_create_reminders": domain.can_create_reminders(friends, base["tier"]),
        "shares_ledger": domain.shares_ledger(base["tier"], base["reverse_tier"]),
        "item_access": None,
    }
    if item_type is not None and item_id is not None and friends:

        async def load_item() -> str | None:
            async with deps.pool.acquire() as conn:
                return await repository.item_access(conn, owner, viewer, item_type, item_id)

        result["item_access"] = await cache.cached(
            deps.redis, f"item:{owner}:{viewer}:{item_type}:{item_id}", [owner, viewer], deps.settings.friends_cache_ttl_s, load_item
        )
    return result


async def ledger_peers(deps: Deps, principal: Principal, uid: str) -> dict[str, Any]:
    _check_party(principal, uid)

    async def load() -> list[str]:
        async with deps.pool.acquire() as conn:
            return await repository.ledger_peers(conn, uid)

    return {"user_id": uid, "peers": await cache.cached(deps.redis, f"peers:{uid}", [uid], deps.settings.friends_cache_ttl_s, load)}


async def shared_with(deps: Deps, principal: Principal, viewer: str, item_type: str | None, page: PageParams) -> dict[str, Any]:
    """Items friends share with ``viewer`` (for the owning service's list endpoints)."""
    _check_party(principal, viewer)
    result = await list_shares(deps, principal, "incoming", item_type, page)
    return {
        "items": [
            {"owner_id": s["owner_id"], "item_type": s["item_type"], "item_id": s["item_id"], "access": s["access"], "shared_at": s["created_at"]}
            for s in result["items"]
        ],
        "next_cursor": result["next_cursor"],
    }


# --- erasure ----------------------------------------------------------------------------


async def erase_user(deps: Deps, uid: str) -> dict[str, int]:
    """``user.deleted``: every relation of the user goes, and each ex-friend hears
    friend.removed. Safe to repeat."""
    async with deps.pool.acquire() as conn, conn.transaction():
        ex_friends = await repository.friend_ids(conn, uid)
        counts = await repository.erase_user(conn, uid)
        for friend in ex_friends:
            await repository.add_outbox(conn, "friend.removed", {"user_ids": sorted([uid, friend]), "by": uid, "reason": "user_deleted"})
    await _after_commit(deps, uid, *ex_friends)
    try:
        async for key in deps.redis.scan_iter(match=f"eindr:friends:match:{uid}:*", count=100):
            await deps.redis.delete(key)
    except RedisError:
        pass
    return counts
