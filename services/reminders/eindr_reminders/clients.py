"""Typed calls to the users, auth and friends services. They degrade honestly when the other
service is down or not deployed: defaults are used (no shared reminders, default
preferences) and a warning is logged (at most once a minute per kind), the worker never
crashes because of them. The one exception fails closed: whether a friend may create a
reminder for someone is never guessed."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field

from eindr_common.errors import Problem
from eindr_common.http_client import ServiceClient
from eindr_common.identity import Principal

log = logging.getLogger("eindr.reminders.clients")


@dataclass(frozen=True)
class Preferences:
    timezone: str = "UTC"
    quiet_hours: dict | None = None
    notification_channels: tuple[str, ...] = ("sse",)
    default_lead_minutes: int | None = None
    degraded: bool = False


DEFAULT_PREFERENCES = Preferences(degraded=True)
DOWN_FOR_S = 5.0  # after a failed call, answer defaults without calling for this long


@dataclass
class Device:
    id: str
    platform: str | None
    push_token: str | None


@dataclass
class _WarnOnce:
    every_s: float = 60.0
    last: dict[str, float] = field(default_factory=dict)

    def __call__(self, kind: str, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self.last.get(kind, -1e9) >= self.every_s:
            self.last[kind] = now
            log.warning(message, *args)


_warn = _WarnOnce()


class UsersClient:
    def __init__(self, base_url: str, secret: str, *, cache_s: float = 0.0) -> None:
        self._client = ServiceClient(base_url, "users", secret, connect_timeout_s=1.0, read_timeout_s=3.0, attempts=2)
        self._cache_s = cache_s
        self._cache: dict[str, tuple[float, Preferences]] = {}
        self._down_until = 0.0
        self._probing = False

    async def aclose(self) -> None:
        await self._client.aclose()

    def forget(self, uid: str) -> None:
        self._cache.pop(uid, None)

    async def preferences(self, principal: Principal) -> Preferences:
        if self._cache_s:
            hit = self._cache.get(principal.uid)
            if hit and hit[0] > time.monotonic():
                return hit[1]
        if self._down_until:
            # Circuit open after a failure: answer defaults at once; when it is time to look
            # again, exactly one call probes while the others keep the defaults (no herd).
            if time.monotonic() < self._down_until or self._probing:
                return DEFAULT_PREFERENCES
            self._probing = True
        try:
            response = await self._client.call("GET", "/v1/users/me/preferences", principal)
            body = response.json()
            prefs = Preferences(
                timezone=body.get("timezone") or "UTC",
                quiet_hours=body.get("quiet_hours") or None,
                notification_channels=tuple(body.get("notification_channels") or ("sse",)),
                default_lead_minutes=body.get("default_lead_minutes"),
            )
            self._down_until = 0.0
        except (Problem, ValueError, OSError) as exc:
            if not isinstance(exc, Problem) or exc.status >= 500:
                self._down_until = time.monotonic() + DOWN_FOR_S
            else:
                self._down_until = 0.0  # a 4xx (e.g. an unknown user) is an answer, not an outage
            _warn("users", "users service unavailable (%s); using default preferences", type(exc).__name__)
            prefs = DEFAULT_PREFERENCES
        finally:
            self._probing = False
        if self._cache_s:
            # Answers (defaults included) are cached; the users events (preferences/timezone
            # changed) drop an entry at once.
            self._cache[principal.uid] = (time.monotonic() + self._cache_s, prefs)
            if len(self._cache) > 100_000:
                self._cache.clear()
        return prefs


class AuthClient:
    def __init__(self, base_url: str, secret: str) -> None:
        self._client = ServiceClient(base_url, "auth", secret, connect_timeout_s=1.0, read_timeout_s=3.0, attempts=2)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def devices(self, principal: Principal) -> list[Device] | None:
        """The user's devices, or ``None`` when the auth service cannot be asked."""
        try:
            response = await self._client.call("GET", "/v1/auth/devices", principal)
            items = response.json().get("items") or []
        except (Problem, ValueError, OSError) as exc:
            _warn("auth", "auth service unavailable (%s); push skipped", type(exc).__name__)
            return None
        return [Device(id=str(d.get("id")), platform=d.get("platform"), push_token=d.get("push_token")) for d in items]

    async def remove_device(self, principal: Principal, device_id: str) -> bool:
        try:
            await self._client.call("DELETE", f"/v1/auth/devices/{device_id}", principal)
            return True
        except Problem as exc:
            if exc.status == 404:
                return True
            _warn("auth-delete", "could not remove device with an invalid push token (%s)", exc.code)
            return False


@dataclass(frozen=True)
class SharedReminder:
    """One grant from the friends service: ``owner_id`` shares reminder ``reminder_id`` with
    the caller, ``access`` ``view`` or ``edit``. Reminders honours it only while
    ``owner_id`` really owns that reminder (a share of someone else's id grants nothing)."""

    owner_id: str
    reminder_id: uuid.UUID
    access: str


def _grant(item: dict) -> SharedReminder | None:
    # friends keeps item ids as the sharer typed them; ours are compared as UUIDs.
    if item.get("item_type") != "reminder" or item.get("access") not in ("view", "edit"):
        return None
    try:
        return SharedReminder(str(item["owner_id"]), uuid.UUID(str(item["item_id"])), item["access"])
    except (KeyError, ValueError, TypeError):
        return None


@dataclass(frozen=True)
class CreatePermission:
    allowed: bool
    friends: bool
    blocked: bool
    tier: str | None


class FriendsClient:
    """The friends service's answers, asked with the end user's identity. Nothing is cached
    here: friends caches and invalidates on every change, so a revocation, a downgrade, an
    unfriending or a block counts from the caller's next request."""

    def __init__(self, base_url: str, secret: str, *, max_items: int) -> None:
        self._client = ServiceClient(base_url, "friends", secret, connect_timeout_s=1.0, read_timeout_s=3.0, attempts=2)
        self.max_items = max_items

    async def aclose(self) -> None:
        await self._client.aclose()

    async def shared_with(self, principal: Principal) -> list[SharedReminder]:
        """Reminders friends share with the caller, newest grant first. Friends unavailable
        → none (logged): the caller's own reminders never depend on friends."""
        out: list[SharedReminder] = []
        cursor: str | None = None
        try:
            while len(out) < self.max_items:
                params = {"item_type": "reminder", "limit": 200, **({"cursor": cursor} if cursor else {})}
                r = await self._client.call(
                    "GET", f"/internal/friends/{principal.uid}/shared-with-me", principal, params=params
                )
                body = r.json()
                out += [g for g in map(_grant, body.get("items") or []) if g is not None]
                cursor = body.get("next_cursor")
                if not cursor:
                    break
        except (Problem, ValueError, OSError) as exc:
            _warn("friends", "friends service unavailable (%s); shared reminders left out", type(exc).__name__)
        return out[: self.max_items]

    async def may_create_for(self, principal: Principal, owner_id: str) -> CreatePermission:
        """May the caller create reminders for ``owner_id``? Fails closed: an unanswered
        question is a 503 (``ServiceUnavailable`` from the client), never a yes."""
        r = await self._client.call("GET", f"/internal/friends/{owner_id}/permissions/{principal.uid}", principal)
        body = r.json()
        return CreatePermission(
            allowed=bool(body.get("can_create_reminders")),
            friends=bool(body.get("friends")),
            blocked=bool(body.get("blocked")),
            tier=body.get("tier"),
        )
