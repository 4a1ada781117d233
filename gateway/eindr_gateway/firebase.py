"""Firebase ID token verification, as Firebase documents it for third-party JWT libraries.

Checks: RS256 signed by a key whose ``kid`` is in Google's published x509 certificates
(fetched from a configurable URL, cached per their Cache-Control max-age), ``aud`` = the
project id, ``iss`` = https://securetoken.google.com/<project id>, ``exp`` in the future,
``iat`` and ``auth_time`` not in the future, ``sub`` non-empty and at most 128 characters.
With the Auth Emulator (``FIREBASE_AUTH_EMULATOR_HOST``) tokens are unsigned (``alg: none``)
and everything but the signature is still checked.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from cachetools import TLRUCache
from cryptography.x509 import load_pem_x509_certificate
from eindr_common.errors import ServiceUnavailable, Unauthorized


class InvalidIdToken(Unauthorized):
    code = "invalid_id_token"


def _reject(detail: str, code: str = "invalid_id_token") -> InvalidIdToken:
    return InvalidIdToken(detail, code=code)


@dataclass(frozen=True)
class VerifiedToken:
    uid: str
    claims: dict[str, Any] = field(compare=False)

    @property
    def auth_time(self) -> int:
        return int(self.claims.get("auth_time", 0))

    @property
    def exp(self) -> int:
        return int(self.claims["exp"])


_MAX_AGE = re.compile(r"max-age=(\d+)")


class CertificateCache:
    """Google's signing certificates, refreshed when their max-age runs out."""

    def __init__(self, url: str, http: httpx.AsyncClient) -> None:
        self.url = url
        self._http = http
        self._keys: dict[str, Any] = {}
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> Any | None:
        if time.time() >= self._expires_at:
            await self._refresh()
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        async with self._lock:
            if time.time() < self._expires_at:
                return
            try:
                response = await self._http.get(self.url, timeout=5)
                response.raise_for_status()
                certs = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                if self._keys:
                    # Keep serving with the keys we have; try again soon.
                    self._expires_at = time.time() + 30
                    return
                raise ServiceUnavailable("Could not fetch Firebase signing certificates", code="certs_unavailable") from exc
            self._keys = {
                kid: load_pem_x509_certificate(pem.encode()).public_key() for kid, pem in certs.items()
            }
            match = _MAX_AGE.search(response.headers.get("cache-control", ""))
            self._expires_at = time.time() + (int(match.group(1)) if match else 3600)


class FirebaseVerifier:
    def __init__(
        self,
        project_id: str,
        certs: CertificateCache,
        *,
        clock_skew_s: int = 5,
        emulator: bool = False,
        cache_size: int = 50_000,
    ) -> None:
        self.project_id = project_id
        self.issuer = f"https://securetoken.google.com/{project_id}"
        self.certs = certs
        self.clock_skew_s = clock_skew_s
        self.emulator = emulator
        # A verified token is good until it expires: skip the RSA check on every request.
        self._verified: TLRUCache[str, VerifiedToken] = TLRUCache(
            maxsize=cache_size, ttu=lambda _k, v, now: v.exp + clock_skew_s, timer=time.time
        )

    def cached(self, token: str) -> VerifiedToken | None:
        """The token's verification result if it was verified before and has not expired."""
        return self._verified.get(token)

    async def verify(self, token: str) -> VerifiedToken:
        cached = self._verified.get(token)
        if cached is not None:
            return cached
        verified = await self._verify(token)
        self._verified[token] = verified
        return verified

    async def _verify(self, token: str) -> VerifiedToken:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise _reject("The ID token is not a well-formed JWT", "malformed_id_token") from exc
        alg = header.get("alg")
        options = {"require": ["exp", "iat", "sub", "aud", "iss"], "verify_iat": False}
        try:
            if self.emulator and alg == "none":
                claims = jwt.decode(
                    token,
                    options={**options, "verify_signature": False},
                    audience=self.project_id,
                    issuer=self.issuer,
                    leeway=self.clock_skew_s,
                )
                # Unverified decode skips exp/aud/iss unless asked; check them explicitly.
                self._check_registered(claims)
            else:
                if alg != "RS256":
                    raise _reject(f"ID tokens must be signed with RS256, not {alg!r}", "invalid_algorithm")
                kid = header.get("kid")
                if not kid:
                    raise _reject("The ID token has no 'kid' header", "unknown_key_id")
                key = await self.certs.key(kid)
                if key is None:
                    raise _reject("The ID token was signed with an unknown key", "unknown_key_id")
                claims = jwt.decode(
                    token, key, algorithms=["RS256"], audience=self.project_id, issuer=self.issuer,
                    leeway=self.clock_skew_s, options=options,
                )
        except InvalidIdToken:
            raise
        except jwt.ExpiredSignatureError as exc:
            raise _reject("The ID token has expired", "expired_id_token") from exc
        except jwt.InvalidAudienceError as exc:
            raise _reject(f"The ID token's 'aud' is not the project {self.project_id!r}", "invalid_audience") from exc
        except jwt.InvalidIssuerError as exc:
            raise _reject(f"The ID token's 'iss' is not {self.issuer!r}", "invalid_issuer") from exc
        except jwt.InvalidSignatureError as exc:
            raise _reject("The ID token's signature does not verify", "invalid_signature") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise _reject(f"The ID token lacks the '{exc.claim}' claim", "missing_claim") from exc
        except jwt.PyJWTError as exc:
            raise _reject(f"The ID token is invalid: {exc}") from exc
        now = time.time()
        if float(claims["iat"]) > now + self.clock_skew_s:
            raise _reject("The ID token's 'iat' is in the future", "issued_in_future")
        if "auth_time" in claims and float(claims["auth_time"]) > now + self.clock_skew_s:
            raise _reject("The ID token's 'auth_time' is in the future", "auth_time_in_future")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise _reject("The ID token's 'sub' is empty", "invalid_subject")
        if len(sub) > 128:
            raise _reject("The ID token's 'sub' is longer than 128 characters", "invalid_subject")
        return VerifiedToken(uid=sub, claims=claims)

    def _check_registered(self, claims: dict[str, Any]) -> None:
        now = time.time()
        if float(claims["exp"]) < now - self.clock_skew_s:
            raise jwt.ExpiredSignatureError("expired")
        if claims.get("aud") != self.project_id:
            raise jwt.InvalidAudienceError("aud")
        if claims.get("iss") != self.issuer:
            raise jwt.InvalidIssuerError("iss")
