"""Who may pass and as whom: Firebase token → revocation → rate limit → feature lock →
internal token. The gateway's single enforcement point for every proxied request."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cachetools import TTLCache
from eindr_common.errors import Forbidden, Unauthorized
from eindr_common.flags import FlagEvaluator
from eindr_common.identity import Principal, mint_internal_token
from eindr_common.observability import current_request
from starlette.requests import Request

from .account_state import AccountStateCache
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
    def __init__(
        self, settings: GatewaySettings, verifier: FirebaseVerifier, limiter: RateLimiter, accounts: AccountStateCache
    ) -> None:
        self.settings = settings
        self.verifier = verifier
        self.limiter = limiter
        self.accounts = accounts
        self.flags = FlagEvaluator(accounts.redis)
        # An internal token lives ≤ 60 s; one minted for the same user, service and claims
        # serves that user's requests for the first half of its life (signing is a visible
        # share of the gateway's CPU), so every token a service sees has ≥ 30 s left.
        ttl = min(settings.internal_token_ttl_s, 60)
        self._tokens: TTLCache = TTLCache(maxsize=settings.token_cache_size, ttl=ttl / 2)
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
        account = await self.accounts.get(verified.uid)
        # check_revoked semantics: tokens whose sign-in predates the revocation are refused.
        if account.revoked_at is not None and verified.auth_time < account.revoked_at:
            raise Unauthorized("This session was revoked; sign in again", code="token_revoked")
        plan = account.plan
        ctx = current_request()
        if ctx is not None:
            ctx.uid = verified.uid
        verdict = await self.limiter.check_user(verified.uid, plan)
        await self._check_feature(request.method, path, verified.uid, plan, account.flag_overrides)
        upstream = {"authorization": "Bearer " + self._internal_token(verified, plan, service, self._client_ip(request))}
        if ctx is not None:
            upstream["x-request-id"] = ctx.request_id
        return Admission(upstream_headers=upstream, response_headers=verdict.headers())

    def _internal_token(self, verified: VerifiedToken, plan: str, service: str, ip: str) -> str:
        claims = {k: verified.claims[k] for k in FORWARDED_CLAIMS if k in verified.claims}
        # Where the request came from, for the audit trail (signed, unlike a header).
        claims["ip"] = ip
        roles = roles_from_claims(verified.claims)
        try:
            key: tuple | None = (service, verified.uid, plan, roles, tuple(sorted(claims.items())))
            token = self._tokens.get(key)
        except TypeError:  # a claim value that is not hashable: mint every time
            key, token = None, None
        if token is None:
            principal = Principal(uid=verified.uid, plan=plan, roles=roles, claims=claims)
            token = mint_internal_token(principal, service, self.settings.internal_token_secret, ttl_s=self.settings.internal_token_ttl_s)
            if key is not None:
                self._tokens[key] = token
        return token

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
