"""Internal identity: the short-lived JWT the gateway mints for each request.

Only the gateway sees Firebase tokens. Every service trusts exactly one thing: an HS256
token signed with the shared internal secret, at most ``internal_token_ttl_s`` old, whose
audience is that service. ``CurrentUser`` is the one dependency that checks it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request

from .errors import Forbidden, Unauthorized
from .observability import current_request

ISSUER = "eindr-gateway"
ALGORITHM = "HS256"
INTERNAL_TOKEN_HEADER = "authorization"


@dataclass(frozen=True)
class Principal:
    uid: str
    plan: str = "free"
    roles: tuple[str, ...] = ()
    claims: dict = field(default_factory=dict, compare=False)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


def mint_internal_token(
    principal: Principal,
    audience: str,
    secret: str,
    *,
    ttl_s: int = 60,
    request_id: str | None = None,
    now: float | None = None,
) -> str:
    """``request_id`` is signed into the token only when given: the gateway leaves it out so
    a user's token can serve several requests (the id travels in ``x-request-id``)."""
    issued = int(now if now is not None else time.time())
    payload = {
        "iss": ISSUER,
        "sub": principal.uid,
        "aud": audience,
        "iat": issued,
        "exp": issued + min(ttl_s, 60),
        "plan": principal.plan,
        "roles": list(principal.roles),
        # Verified Firebase claims the services may need (email, phone, auth_time).
        "ctx": principal.claims,
    }
    if request_id is not None:
        payload["rid"] = request_id
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def verify_internal_token(
    token: str, audience: str, secret: str, *, accepted: Sequence[str] = (), leeway_s: int = 5
) -> Principal:
    """Checks ``token`` against the signing ``secret``, then each ``accepted`` verify-only
    secret (a rotation in progress); only a bad signature moves on to the next secret."""
    for candidate in (secret, *accepted):
        try:
            claims = _decode(token, audience, candidate, leeway_s)
            break
        except jwt.InvalidSignatureError:
            continue
    else:
        raise Unauthorized("The internal token is invalid", code="invalid_internal_token")
    if claims["exp"] - claims["iat"] > 60:
        raise Unauthorized("The internal token lives longer than 60 s", code="invalid_internal_token")
    return Principal(
        uid=str(claims["sub"]),
        plan=str(claims.get("plan") or "free"),
        roles=tuple(claims.get("roles") or ()),
        claims=dict(claims.get("ctx") or {}),
    )


def _decode(token: str, audience: str, secret: str, leeway_s: int) -> dict:
    try:
        return jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=ISSUER,
            leeway=leeway_s,
            options={"require": ["exp", "iat", "sub", "aud", "iss"]},
        )
    except jwt.InvalidSignatureError:
        raise
    except jwt.InvalidAudienceError as exc:
        raise Unauthorized("The internal token was issued for another service", code="invalid_internal_token") from exc
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("The internal token has expired", code="invalid_internal_token") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("The internal token is invalid", code="invalid_internal_token") from exc


def bearer_token(request: Request) -> str | None:
    header = request.headers.get(INTERNAL_TOKEN_HEADER)
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def _current_user(request: Request) -> Principal:
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("This service requires the internal token minted by the gateway", code="missing_internal_token")
    settings = request.app.state.settings
    principal = verify_internal_token(
        token, request.app.state.service_name, settings.internal_token_secret,
        accepted=getattr(settings, "internal_token_accepted_secrets", ()),
    )
    ctx = current_request()
    if ctx is not None:
        ctx.uid = principal.uid
    request.state.principal = principal
    return principal


CurrentUser = Annotated[Principal, Depends(_current_user)]


async def _admin_user(user: CurrentUser) -> Principal:
    if not user.is_admin:
        raise Forbidden("This action needs the admin role", code="admin_required")
    return user


AdminUser = Annotated[Principal, Depends(_admin_user)]


def revoked_key(uid: str) -> str:
    """Redis key holding the epoch second before which ``uid``'s Firebase tokens are refused."""
    return f"eindr:auth:revoked:{uid}"


def plan_key(uid: str) -> str:
    """Redis key the users service writes the user's plan to; the gateway reads it."""
    return f"eindr:users:plan:{uid}"


# Every writer of the keys above (and of the per-user flag overrides) publishes the uid
# here after the write; gateways keep those values in memory and drop a uid's copy when it
# is announced (gateway/eindr_gateway/account_state.py).
ACCOUNT_STATE_CHANNEL = "eindr:account-state"


async def announce_account_change(redis: Any, uid: str) -> None:
    await redis.publish(ACCOUNT_STATE_CHANNEL, uid)


async def set_plan_key(redis: Any, uid: str, plan: str) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(plan_key(uid), plan)
        pipe.publish(ACCOUNT_STATE_CHANNEL, uid)
        await pipe.execute()


async def delete_plan_key(redis: Any, uid: str) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(plan_key(uid))
        pipe.publish(ACCOUNT_STATE_CHANNEL, uid)
        await pipe.execute()


# Moves the revocation second forward only (a late redelivery of an old event must not
# revoke the tokens of an account created again since) and announces the change.
_REVOKE_AT_LEAST = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('PUBLISH', ARGV[2], ARGV[3])
  return 1
end
return 0
"""


async def set_revoked_at(redis: Any, uid: str, revoked_at: int, *, only_forward: bool = False) -> None:
    """Refuse ``uid``'s Firebase tokens signed in before ``revoked_at`` (epoch seconds)."""
    if only_forward:
        await redis.eval(_REVOKE_AT_LEAST, 1, revoked_key(uid), revoked_at, ACCOUNT_STATE_CHANNEL, uid)
        return
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(revoked_key(uid), revoked_at)
        pipe.publish(ACCOUNT_STATE_CHANNEL, uid)
        await pipe.execute()
