"""Internal identity: the short-lived JWT the gateway mints for each request.

Only the gateway sees Firebase tokens. Every service trusts exactly one thing: an HS256
token signed with the shared internal secret, at most ``internal_token_ttl_s`` old, whose
audience is that service. ``CurrentUser`` is the one dependency that checks it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated

import jwt
from fastapi import Depends, Request

from .errors import Forbidden, Unauthorized
from .observability import current_request, current_request_id

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
    issued = int(now if now is not None else time.time())
    payload = {
        "iss": ISSUER,
        "sub": principal.uid,
        "aud": audience,
        "iat": issued,
        "exp": issued + min(ttl_s, 60),
        "plan": principal.plan,
        "roles": list(principal.roles),
        "rid": request_id or current_request_id(),
        # Verified Firebase claims the services may need (email, phone, auth_time).
        "ctx": principal.claims,
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def verify_internal_token(token: str, audience: str, secret: str, *, leeway_s: int = 5) -> Principal:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=ISSUER,
            leeway=leeway_s,
            options={"require": ["exp", "iat", "sub", "aud", "iss"]},
        )
    except jwt.InvalidAudienceError as exc:
        raise Unauthorized("The internal token was issued for another service", code="invalid_internal_token") from exc
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("The internal token has expired", code="invalid_internal_token") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("The internal token is invalid", code="invalid_internal_token") from exc
    if claims["exp"] - claims["iat"] > 60:
        raise Unauthorized("The internal token lives longer than 60 s", code="invalid_internal_token")
    return Principal(
        uid=str(claims["sub"]),
        plan=str(claims.get("plan") or "free"),
        roles=tuple(claims.get("roles") or ()),
        claims=dict(claims.get("ctx") or {}),
    )


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
    principal = verify_internal_token(token, request.app.state.service_name, settings.internal_token_secret)
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
