"""Who may pass and as whom: Firebase token → revocation → rate limit → feature lock →
internal token. The gateway's single enforcement point for every proxied request."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from eindr_common.errors import Forbidden, Unauthorized
from eindr_common.flags import FlagEvaluator, parse_user_overrides, user_key
from eindr_common.identity import Principal, mint_internal_token, plan_key, revoked_key
from eindr_common.observability import current_request
from eindr_common.plans import PLANS
from starlette.requests import Request

from .config import GatewaySettings
from .firebase import FirebaseVerifier, VerifiedToken
from .ratelimit import RateLimiter

# Verified Firebase claims passed on to services inside the internal token.
FORWARDED_CLAIMS = ("email", "email_verified", "phone_number", "name", "picture", "auth_time")


@dataclass
class Admission:
    upstream_headers: dict[str, str]
    response_headers: dict[str, str] = field(default_factory=dict)


def roles_from_claims(claims: dict) -> tuple[str, ...]:
    """Roles come from Firebase custom claims: ``roles: [...]`` or ``admin: true``."""
    roles = claims.get("roles")
    found = {r for r in roles if isinstance(r, str)} if isinstance(roles, list) else set()
    if claims.get("admin") is True:
        found.add("admin")
    return tuple(sorted(found))


class Gatekeeper:
    def __init__(self, settings: GatewaySettings, verifier: FirebaseVerifier, limiter: RateLimiter, redis: aioredis.Redis) -> None:
        self.settings = settings
        self.verifier = verifier
        self.limiter = limiter
        self.redis = redis
        self.flags = FlagEvaluator(redis)
        self._rules = [(m.upper(), prefix, feature) for m, prefix, feature in settings.feature_rules]
        self._public_patterns = [re.compile(p) for p in settings.public_patterns]

    def _client_ip(self, request: Request) -> str:
        return request.client.host if request.client else "unknown"

    async def admit(self, request: Request, service: str) -> Admission:
        path = request.url.path
        if request.method == "OPTIONS" or self._is_public(request.method, path):
            ip_verdict = await self.limiter.check_ip(self._client_ip(request))
            return Admission(upstream_headers={}, response_headers=ip_verdict.headers())

        token = self._bearer(request) if "authorization" in request.headers else None
        verified = self.verifier.cached(token) if token else None
        if verified is None:
            # The per-IP limit guards the expensive part (signature checks, certificate
            # fetches) against floods of bad or missing tokens; a token verified before
            # skips it and is limited per user below.
            await self.limiter.check_ip(self._client_ip(request))
            verified = await self.verifier.verify(token or self._bearer(request))
        plan, flag_overrides = await self._account_state(verified)
        ctx = current_request()
        if ctx is not None:
            ctx.uid = verified.uid
        verdict = await self.limiter.check_user(verified.uid, plan)
        await self._check_feature(request.method, path, verified.uid, plan, flag_overrides)
        principal = Principal(
            uid=verified.uid,
            plan=plan,
            roles=roles_from_claims(verified.claims),
            claims={
                **{k: verified.claims[k] for k in FORWARDED_CLAIMS if k in verified.claims},
                # Where the request came from, for the audit trail (signed, unlike a header).
                "ip": self._client_ip(request),
            },
        )
        internal = mint_internal_token(
            principal, service, self.settings.internal_token_secret,
            ttl_s=self.settings.internal_token_ttl_s, request_id=ctx.request_id if ctx else None,
        )
        upstream = {"authorization": f"Bearer {internal}"}
        if ctx is not None:
            upstream["x-request-id"] = ctx.request_id
        return Admission(upstream_headers=upstream, response_headers=verdict.headers())

    def _is_public(self, method: str, path: str) -> bool:
        if any(path.startswith(p) for p in self.settings.public_paths):
            return True
        return method in ("GET", "HEAD") and any(p.match(path) for p in self._public_patterns)

    @staticmethod
    def _bearer(request: Request) -> str:
        header = request.headers.get("authorization")
        if header is None:
            raise Unauthorized("Send a Firebase ID token as 'Authorization: Bearer <token>'", code="missing_token")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or " " in token or token.count(".") != 2:
            raise Unauthorized("The Authorization header must be 'Bearer <Firebase ID token>'", code="malformed_authorization")
        return token

    async def _account_state(self, verified: VerifiedToken) -> tuple[str, dict[str, bool]]:
        """Plan and per-user flag overrides, refusing revoked sessions: one Redis round trip."""
        plan, revoked_at, overrides = await self.redis.mget(
            plan_key(verified.uid), revoked_key(verified.uid), user_key(verified.uid)
        )
        # check_revoked semantics: tokens whose sign-in predates the revocation are refused.
        if revoked_at is not None and verified.auth_time < int(float(revoked_at)):
            raise Unauthorized("This session was revoked; sign in again", code="token_revoked")
        return (plan if plan in PLANS else "free"), parse_user_overrides(overrides)

    async def _check_feature(self, method: str, path: str, uid: str, plan: str, overrides: dict[str, bool]) -> None:
        for rule_method, prefix, feature in self._rules:
            if (rule_method == "*" or rule_method == method) and path.startswith(prefix):
                rules = await self.flags.rules()
                if not self.flags.evaluate_with(rules, feature, uid, plan, overrides):
                    unlock = await self.flags.unlocking_plan(feature)
                    raise Forbidden(
                        f"'{feature}' is not part of the {plan} plan" + (f"; the {unlock} plan unlocks it" if unlock else ""),
                        code="feature_locked",
                        extra={"feature": feature, "required_plan": unlock},
                    )
