"""Typed calls from auth to the users service."""

from __future__ import annotations

from typing import Any

from eindr_common.errors import Problem
from eindr_common.http_client import ServiceClient, UpstreamError
from eindr_common.identity import Principal

from .schemas import UserProfile


class UsersClient:
    def __init__(self, base_url: str, secret: str, *, connect_timeout_s: float, read_timeout_s: float) -> None:
        self._client = ServiceClient(
            base_url, "users", secret, connect_timeout_s=connect_timeout_s, read_timeout_s=read_timeout_s
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def provision(self, principal: Principal, *, language: str | None, timezone: str | None) -> UserProfile:
        """Creates the account on first login, else returns it (idempotent on the users
        side, so the call is marked safe to retry)."""
        try:
            response = await self._client.call(
                "POST",
                "/internal/users/provision",
                principal,
                json={"language": language, "timezone": timezone},
                headers={"idempotency-key": f"provision:{principal.uid}"},
            )
        except UpstreamError as exc:
            # Whatever users refused (a 401 would mean a secret mismatch between services)
            # is our fault, not the caller's: never pass it on as the client's 4xx.
            raise Problem(
                f"The users service refused to provision the account ({exc.response.status_code})",
                status=502,
                code="users_error",
            ) from exc
        return UserProfile.model_validate(response.json())


def profile_dict(profile: UserProfile) -> dict[str, Any]:
    return profile.model_dump(mode="json")
