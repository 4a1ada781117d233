"""Typed calls to the reminders service, made as the user (the internal token carries the
user's Principal), so the reminders service enforces its own rules on every change."""

from __future__ import annotations

import uuid
from typing import Any

from eindr_common.errors import NotFound
from eindr_common.http_client import ServiceClient, UpstreamError
from eindr_common.identity import Principal


class RemindersClient:
    def __init__(self, base_url: str, secret: str, *, timeout_s: float = 10.0) -> None:
        self._client = ServiceClient(base_url, "reminders", secret, connect_timeout_s=2.0, read_timeout_s=timeout_s, attempts=3)
        self.requests = 0

    async def aclose(self) -> None:
        await self._client.aclose()

    @staticmethod
    def _p(uid: str) -> Principal:
        return Principal(uid=uid)

    async def get(self, uid: str, reminder_id: uuid.UUID | str) -> dict[str, Any] | None:
        self.requests += 1
        try:
            r = await self._client.call("GET", f"/v1/reminders/{reminder_id}", self._p(uid))
        except UpstreamError as exc:
            if exc.status == 404:
                return None
            raise
        return r.json()

    async def create(self, uid: str, body: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        self.requests += 1
        r = await self._client.call("POST", "/v1/reminders", self._p(uid), json=body, headers={"Idempotency-Key": idempotency_key})
        return r.json()

    async def bulk_create(self, uid: str, items: list[dict[str, Any]], *, idempotency_key: str) -> list[dict[str, Any]]:
        """All or nothing (the reminders API's contract): a 400 names every bad item."""
        self.requests += 1
        r = await self._client.call("POST", "/v1/reminders:bulk", self._p(uid), json={"items": items},
                                    headers={"Idempotency-Key": idempotency_key})
        return r.json()["items"]

    async def patch(self, uid: str, reminder_id: uuid.UUID | str, body: dict[str, Any]) -> dict[str, Any] | None:
        self.requests += 1
        try:
            r = await self._client.call("PATCH", f"/v1/reminders/{reminder_id}", self._p(uid), json=body)
        except UpstreamError as exc:
            if exc.status == 404:
                return None
            raise
        return r.json()

    async def cancel(self, uid: str, reminder_id: uuid.UUID | str) -> dict[str, Any] | None:
        self.requests += 1
        try:
            r = await self._client.call("POST", f"/v1/reminders/{reminder_id}/cancel", self._p(uid), json={"scope": "series"},
                                        headers={"Idempotency-Key": f"calendar-cancel-{reminder_id}"})
        except UpstreamError as exc:
            if exc.status in (404, 409):
                return None
            raise
        return r.json()

    async def reopen(self, uid: str, reminder_id: uuid.UUID | str) -> dict[str, Any] | None:
        self.requests += 1
        try:
            r = await self._client.call("POST", f"/v1/reminders/{reminder_id}/reopen", self._p(uid))
        except UpstreamError as exc:
            if exc.status == 404:
                return None
            raise
        return r.json()

    async def delete(self, uid: str, reminder_id: uuid.UUID | str) -> None:
        self.requests += 1
        try:
            await self._client.call("DELETE", f"/v1/reminders/{reminder_id}", self._p(uid))
        except UpstreamError as exc:
            if exc.status != 404:
                raise


__all__ = ["NotFound", "RemindersClient"]
