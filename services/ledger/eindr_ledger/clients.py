"""Typed calls from the ledger to the friends and reminders services."""

from __future__ import annotations

import logging
from datetime import datetime

from eindr_common.errors import Problem
from eindr_common.http_client import ServiceClient
from eindr_common.identity import Principal

log = logging.getLogger("eindr.ledger.clients")


class FriendsClient:
    """Asks friends which friends share their ledger with the caller (mutually trusted).
    The friends service answers from its Redis cache, invalidated on every tier change,
    so an upgrade or downgrade shows in the very next ledger request."""

    def __init__(self, base_url: str, secret: str, *, connect_timeout_s: float, read_timeout_s: float) -> None:
        self._client = ServiceClient(base_url, "friends", secret, connect_timeout_s=connect_timeout_s, read_timeout_s=read_timeout_s, attempts=2)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def ledger_peers(self, principal: Principal) -> list[str] | None:
        """Uids whose entries about the caller show in the caller's ledger; None when the
        friends service cannot answer (the caller then sees only their own entries)."""
        try:
            response = await self._client.call("GET", f"/internal/friends/{principal.uid}/ledger-peers", principal)
            peers = response.json().get("peers")
        except (Problem, ValueError) as exc:
            log.warning("friends did not answer; shared entries left out", extra={"fields": {"error": type(exc).__name__}})
            return None
        if not isinstance(peers, list) or not all(isinstance(p, str) for p in peers):
            return None
        return peers


class RemindersClient:
    def __init__(self, base_url: str, secret: str, *, connect_timeout_s: float, read_timeout_s: float) -> None:
        self._client = ServiceClient(base_url, "reminders", secret, connect_timeout_s=connect_timeout_s, read_timeout_s=read_timeout_s, attempts=2)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def create(self, principal: Principal, *, title: str, due_at: datetime, key: str) -> str:
        """Creates the reminder (idempotent per entry: retrying never makes two); returns
        its id. Raises a Problem when reminders is down or refuses."""
        response = await self._client.call(
            "POST",
            "/v1/reminders",
            principal,
            json={"title": title, "due_at": due_at.isoformat(), "source": "text"},
            headers={"idempotency-key": key},
        )
        body = response.json()
        reminder_id = body.get("id") if isinstance(body, dict) else None
        if not reminder_id:
            raise Problem("reminders answered without an id", status=502, code="reminders_bad_response")
        return str(reminder_id)

    async def cancel(self, principal: Principal, reminder_id: str) -> None:
        """Cancels a reminder the ledger made (the debt is gone or its due date moved).
        Best effort: raises a Problem, which callers log and ignore."""
        await self._client.call("POST", f"/v1/reminders/{reminder_id}/cancel", principal, headers={"idempotency-key": f"cancel:{reminder_id}"})
