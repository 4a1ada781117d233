"""Use cases of the calendar service and the sync engine.

A sync run of one connection, serialised per connection by a PostgreSQL advisory lock:
1. push: reminder changes queued for this connection (``calendar.outbound``, filled by the
   reminders-event consumer) are written to the target calendar, conditional on the ETag;
2. pull: each synced calendar's changes (Google ``syncToken``; CalDAV ctag check, then
   ``sync-collection``) become reminder creates / patches / deletes, made through the
   reminders API as the user;
3. Google: push channels are (re)created before they expire.
Echo loops are cut by fingerprints: a change whose content equals what the link last
synced is not written back. Both sides changed since the last sync is a conflict: the
later modification (each source's own timestamp) wins and both versions are logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlparse

import asyncpg
import redis.asyncio as aioredis
from eindr_common.errors import (
    BadRequest,
    Conflict,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
)
from eindr_common.http_client import UpstreamError
from eindr_common.identity import Principal
from eindr_common.pagination import encode_cursor
from prometheus_client import Counter, Histogram

from . import caldav_sync as cd
from . import domain, ical
from . import google as g
from . import repository as repo
from .clients import RemindersClient
from .crypto import Crypto, SecretUnreadable
from .settings import CalendarSettings

log = logging.getLogger("eindr.calendar")

WAKE_KEY = "eindr:calendar:wake"
OAUTH_KEY = "eindr:calendar:oauth:"
OAUTH_TTL_S = 600

RUNS = Counter("calendar_sync_runs_total", "Sync runs", ["provider", "status"])
CHANGES = Counter("calendar_sync_changes_total", "Changes applied", ["provider", "direction"])
RUN_SECONDS = Histogram("calendar_sync_run_seconds", "Duration of a sync run", ["provider"])
WEBHOOKS = Counter("calendar_webhooks_total", "Google push notifications", ["result"])
CONFLICTS = Counter("calendar_conflicts_total", "Conflicts resolved", ["winner"])


@dataclass
class Deps:
    pool: asyncpg.Pool
    redis: aioredis.Redis
    settings: CalendarSettings
    crypto: Crypto
    reminders: RemindersClient


def utcnow() -> datetime:
    return datetime.now(UTC)


def _invalid(field_name: str, message: str, code: str = "validation_error") -> ValidationFailed:
    return ValidationFailed(f"Invalid value for: {field_name}", code=code, errors=[{"field": field_name, "message": message}])


# ================================================================ views

def connection_view(row: asyncpg.Record, calendars: list[asyncpg.Record] | None = None) -> dict[str, Any]:
    out = {k: row[k] for k in ("id", "provider", "status", "display_name", "server_url", "username", "import_mode",
                               "poll_interval_s", "next_sync_at", "last_error", "last_sync_at", "created_at", "updated_at")}
    out["failures"] = row["failures"]
    out["calendars_checked_at"] = row["calendars_checked_at"]
    if calendars is not None:
        out["calendars"] = [calendar_view(c) for c in calendars]
    return out


def calendar_view(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"], "remote_id": row["remote_id"], "name": row["name"], "sync_enabled": row["sync_enabled"],
        "is_target": row["is_target"], "push_channel_expires_at": row["channel_expires_at"],
    }


def run_view(row: asyncpg.Record) -> dict[str, Any]:
    return {k: row[k] for k in ("id", "connection_id", "trigger", "started_at", "finished_at", "status", "changes_in",
                                "changes_out", "requests", "full_resync", "errors")}


def conflict_view(row: asyncpg.Record) -> dict[str, Any]:
    return {k: row[k] for k in ("id", "connection_id", "reminder_id", "remote_uid", "kind", "winner", "eindr_version", "remote_version",
                                "eindr_modified_at", "remote_modified_at", "created_at")}


# ================================================================ connections (API use cases)

async def _get_owned(conn: asyncpg.Connection, principal: Principal, connection_id: uuid.UUID) -> asyncpg.Record:
    row = await repo.get_connection(conn, principal.uid, connection_id)
    if row is None:
        raise NotFound("No such calendar connection", code="connection_not_found")
    return row


async def connect_caldav(deps: Deps, principal: Principal, body: Any) -> dict[str, Any]:
    account = cd.CalDAVAccount(body.server_url, body.username, body.password, timeout_s=deps.settings.calendar_http_timeout_s)
    try:
        principal_url, calendars = await asyncio.wait_for(asyncio.to_thread(account.discover), deps.settings.calendar_http_timeout_s + 5)
    except cd.CalDAVAuthError as exc:
        raise BadRequest("The CalDAV server rejected the username or password", code="caldav_unauthorized",
                         errors=[{"field": "password", "message": "rejected by the server (401)"}]) from exc
    except (cd.NotCalDAV, cd.CalDAVError, TimeoutError) as exc:
        raise BadRequest("This URL is not a CalDAV server", code="not_caldav",
                         errors=[{"field": "server_url", "message": str(exc)[:200] or "no CalDAV principal here"}]) from exc
    finally:
        account.close()
    connection_id = uuid.uuid4()
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await repo.insert_connection(conn, {
            "id": connection_id, "user_id": principal.uid, "provider": "caldav",
            "display_name": body.display_name or urlparse(body.server_url).hostname, "server_url": body.server_url,
            "principal_url": principal_url, "username": body.username, "secret_enc": deps.crypto.encrypt(body.password),
            "import_mode": body.import_mode, "poll_interval_s": body.poll_interval_s or deps.settings.calendar_poll_interval_s,
            "calendars_checked_at": utcnow(),
        })
        cals = []
        for i, cal in enumerate(calendars):
            rec = await repo.upsert_calendar(conn, connection_id=connection_id, user_id=principal.uid, remote_id=cal.url, name=cal.name)
            if i == 0:
                await repo.update_calendar(conn, rec["id"], is_target=True)
            cals.append(rec)
        cals = await repo.list_calendars(conn, connection_id)
    await wake(deps.redis)
    return connection_view(row, cals)


async def google_connect(deps: Deps, principal: Principal) -> dict[str, Any]:
    s = deps.settings
    if not s.calendar_google_client_id:
        raise ServiceUnavailable("Google Calendar is not configured on this server", code="google_not_configured")
    verifier, challenge = g.pkce_pair()
    state = secrets.token_urlsafe(32)
    record = {"uid": principal.uid, "verifier": deps.crypto.encrypt(verifier).decode()}
    await deps.redis.set(OAUTH_KEY + state, json.dumps(record), ex=OAUTH_TTL_S)
    return {"authorization_url": g.consent_url(s, state=state, challenge=challenge), "state": state, "expires_in": OAUTH_TTL_S}


async def google_callback(deps: Deps, principal: Principal, body: Any) -> dict[str, Any]:
    raw = await deps.redis.getdel(OAUTH_KEY + body.state)
    record = json.loads(raw) if raw else None
    if not record or record.get("uid") != principal.uid:
        raise _invalid("state", "unknown or expired authorization state; start again at /v1/calendar/google/connect", "invalid_oauth_state")
    verifier = deps.crypto.decrypt(record["verifier"].encode())
    try:
        tokens = await g.exchange_code(deps.settings, body.code, verifier)
    except g.OAuthError as exc:
        raise _invalid("code", f"Google refused the authorization code ({exc.error})", "google_oauth_failed") from exc
    except g.GoogleError as exc:
        raise ServiceUnavailable("Google's token endpoint is unreachable", code="google_unavailable") from exc
    if not tokens.refresh_token:
        raise _invalid("code", "Google returned no refresh token (consent with access_type=offline is required)", "google_oauth_failed")
    api = g.GoogleCalendar(deps.settings, access_token=tokens.access_token, refresh_token=tokens.refresh_token, expires_at=tokens.expires_at)
    try:
        items = await asyncio.to_thread(api.calendars)
    except g.GoogleError as exc:
        raise ServiceUnavailable(f"Google Calendar answered with an error: {exc}", code="google_unavailable") from exc
    primary = next((c for c in items if c.get("primary")), items[0] if items else None)
    connection_id = uuid.uuid4()
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await repo.insert_connection(conn, {
            "id": connection_id, "user_id": principal.uid, "provider": "google",
            "display_name": "Google Calendar", "username": primary["id"] if primary else None,
            "secret_enc": deps.crypto.encrypt(tokens.refresh_token), "access_token_enc": deps.crypto.encrypt(tokens.access_token),
            "access_expires_at": tokens.expires_at, "import_mode": body.import_mode,
            "poll_interval_s": body.poll_interval_s or deps.settings.calendar_poll_interval_s, "calendars_checked_at": utcnow(),
        })
        for item in items:
            if item.get("accessRole") not in (None, "owner", "writer"):
                continue
            rec = await repo.upsert_calendar(conn, connection_id=connection_id, user_id=principal.uid, remote_id=item["id"],
                                             name=item.get("summaryOverride") or item.get("summary"), timezone=item.get("timeZone"))
            if primary is not None and item["id"] == primary["id"]:
                await repo.update_calendar(conn, rec["id"], is_target=True)
        cals = await repo.list_calendars(conn, connection_id)
    await wake(deps.redis)
    return connection_view(row, cals)


async def rediscover_soon(deps: Deps, conn: asyncpg.Connection, principal: Principal) -> None:
    """Someone is looking at the connections: calendar lists older than a few minutes are
    read again by the worker's next run (seconds away), not inline in this request."""
    if await repo.rediscover_soon(conn, principal.uid, deps.settings.calendar_rediscover_on_view_s):
        await wake(deps.redis)


async def list_connections(conn: asyncpg.Connection, principal: Principal, limit: int, after: list[Any] | None) -> dict[str, Any]:
    try:
        rows = await repo.list_connections(conn, principal.uid, limit + 1, after)
    except (ValueError, IndexError, TypeError) as exc:
        raise BadRequest("cursor is not one this API issued", code="invalid_cursor", errors=[{"field": "cursor", "message": "malformed cursor"}]) from exc
    more = len(rows) > limit
    rows = rows[:limit]
    items = [connection_view(r, await repo.list_calendars(conn, r["id"])) for r in rows]
    cursor = encode_cursor([rows[-1]["created_at"].isoformat(), str(rows[-1]["id"])]) if more and rows else None
    return {"items": items, "next_cursor": cursor}


async def get_connection(conn: asyncpg.Connection, principal: Principal, connection_id: uuid.UUID) -> dict[str, Any]:
    row = await _get_owned(conn, principal, connection_id)
    return connection_view(row, await repo.list_calendars(conn, connection_id))


async def patch_connection(deps: Deps, principal: Principal, connection_id: uuid.UUID, body: Any) -> dict[str, Any]:
    sent = body.model_fields_set
    async with deps.pool.acquire() as conn:
        row = await _get_owned(conn, principal, connection_id)
    fields: dict[str, Any] = {}
    for name in ("import_mode", "poll_interval_s", "display_name"):
        if name in sent and getattr(body, name) is not None:
            fields[name] = getattr(body, name)
    if "password" in sent and body.password is not None:
        if row["provider"] != "caldav":
            raise _invalid("password", "only CalDAV connections have a password; reconnect Google through /google/connect")
        account = cd.CalDAVAccount(row["server_url"], row["username"], body.password, timeout_s=deps.settings.calendar_http_timeout_s)
        try:
            await asyncio.to_thread(account.discover)
        except cd.CalDAVAuthError as exc:
            raise BadRequest("The CalDAV server rejected the username or password", code="caldav_unauthorized",
                             errors=[{"field": "password", "message": "rejected by the server (401)"}]) from exc
        except cd.CalDAVError as exc:
            raise ServiceUnavailable("The CalDAV server could not be reached", code="caldav_unavailable") from exc
        finally:
            account.close()
        fields.update(secret_enc=deps.crypto.encrypt(body.password), status="active", failures=0, last_error=None,
                      next_sync_at=utcnow())
    async with deps.pool.acquire() as conn:
        await repo.update_connection(conn, connection_id, **fields)
        return await get_connection(conn, principal, connection_id)


async def patch_calendar(deps: Deps, principal: Principal, connection_id: uuid.UUID, calendar_id: uuid.UUID, body: Any) -> dict[str, Any]:
    async with deps.pool.acquire() as conn, conn.transaction():
        await _get_owned(conn, principal, connection_id)
        cal = await repo.get_calendar(conn, principal.uid, connection_id, calendar_id)
        if cal is None:
            raise NotFound("No such calendar in this connection", code="calendar_not_found")
        fields: dict[str, Any] = {}
        if body.sync_enabled is not None:
            fields["sync_enabled"] = body.sync_enabled
        if body.is_target is True:
            await repo.clear_target(conn, connection_id)
            fields["is_target"] = True
        elif body.is_target is False:
            fields["is_target"] = False
        await repo.update_calendar(conn, calendar_id, **fields)
        cal = await repo.get_calendar(conn, principal.uid, connection_id, calendar_id)
    async with deps.pool.acquire() as conn:  # after the commit: see repo.request_sync
        await repo.request_sync(conn, connection_id)
    await wake(deps.redis)
    return calendar_view(cal)


async def delete_connection(deps: Deps, principal: Principal, connection_id: uuid.UUID) -> None:
    """Stops the push channels, then deletes the connection with its credentials, calendars,
    links and queue (cascade). Reminders already created stay."""
    async with deps.pool.acquire() as conn:
        row = await _get_owned(conn, principal, connection_id)
    if row["provider"] == "google":
        await stop_channels(deps, connection_id)
    async with deps.pool.acquire() as conn:
        await repo.delete_connection(conn, principal.uid, connection_id)


async def stop_channels(deps: Deps, connection_id: uuid.UUID) -> int:
    async with deps.pool.acquire() as conn:
        row = await repo.get_connection_secrets(conn, connection_id)
        cals = await repo.list_calendars(conn, connection_id)
    if row is None:
        return 0
    with_channel = [c for c in cals if c["channel_id"]]
    if not with_channel:
        return 0
    stopped = 0
    try:
        api = _google_api(deps, row)
        for cal in with_channel:
            await asyncio.to_thread(api.stop, cal["channel_id"], cal["channel_resource_id"] or "")
            stopped += 1
    except g.GoogleError as exc:
        log.warning("could not stop a push channel; it expires on its own", extra={"fields": {"error": str(exc)[:200]}})
    async with deps.pool.acquire() as conn:
        for cal in with_channel:
            await repo.update_calendar(conn, cal["id"], channel_id=None, channel_token_hash=None, channel_resource_id=None,
                                       channel_expires_at=None)
    return stopped


async def list_runs(conn: asyncpg.Connection, principal: Principal, connection_id: uuid.UUID, limit: int, after: list[Any] | None) -> dict[str, Any]:
    await _get_owned(conn, principal, connection_id)
    try:
        rows = await repo.list_runs(conn, connection_id, limit + 1, after)
    except (ValueError, IndexError, TypeError) as exc:
        raise BadRequest("cursor is not one this API issued", code="invalid_cursor", errors=[{"field": "cursor", "message": "malformed cursor"}]) from exc
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = encode_cursor([rows[-1]["started_at"].isoformat(), str(rows[-1]["id"])]) if more and rows else None
    return {"items": [run_view(r) for r in rows], "next_cursor": cursor}


async def list_conflicts(conn: asyncpg.Connection, principal: Principal, limit: int, after: list[Any] | None,
                         connection_id: uuid.UUID | None = None) -> dict[str, Any]:
    if connection_id is not None:
        await _get_owned(conn, principal, connection_id)
    try:
        rows = await repo.list_conflicts(conn, principal.uid, limit + 1, after, connection_id)
    except (ValueError, IndexError, TypeError) as exc:
        raise BadRequest("cursor is not one this API issued", code="invalid_cursor", errors=[{"field": "cursor", "message": "malformed cursor"}]) from exc
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = encode_cursor([rows[-1]["created_at"].isoformat(), str(rows[-1]["id"])]) if more and rows else None
    return {"items": [conflict_view(r) for r in rows], "next_cursor": cursor}


async def sync_now(deps: Deps, principal: Principal, connection_id: uuid.UUID) -> dict[str, Any]:
    async with deps.pool.acquire() as conn:
        row = await _get_owned(conn, principal, connection_id)
    if row["status"] != "active":
        raise Conflict(f"This connection is {row['status']}: {row['last_error'] or 'reconnect it first'}", code=f"connection_{row['status']}")
    run = await run_sync(deps, connection_id, trigger="manual", wait=True)
    if run is None:  # another run (the worker's) changed its status while we waited for the lock
        async with deps.pool.acquire() as conn:
            row = await _get_owned(conn, principal, connection_id)
        raise Conflict(f"This connection is {row['status']}: {row['last_error'] or 'reconnect it first'}", code=f"connection_{row['status']}")
    return run_view(run)


# ================================================================ webhook

def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def google_webhook(deps: Deps, headers: dict[str, str]) -> str:
    """Verify a push notification's channel id + token; queue a sync. Returns the outcome."""
    channel_id = headers.get("x-goog-channel-id") or ""
    token = headers.get("x-goog-channel-token") or ""
    state = (headers.get("x-goog-resource-state") or "").lower()
    resource_id = headers.get("x-goog-resource-id")
    if not channel_id or len(channel_id) > 64:
        WEBHOOKS.labels("unknown_channel").inc()
        raise NotFound("Unknown push channel", code="unknown_channel")
    async with deps.pool.acquire() as conn:
        cal = await repo.calendar_by_channel(conn, channel_id)
        if cal is None:
            WEBHOOKS.labels("unknown_channel").inc()
            raise NotFound("Unknown push channel", code="unknown_channel")
        if not cal["channel_token_hash"] or not hmac.compare_digest(cal["channel_token_hash"], token_hash(token)):
            WEBHOOKS.labels("bad_token").inc()
            raise _forbidden()
        if resource_id and cal["channel_resource_id"] and resource_id != cal["channel_resource_id"]:
            WEBHOOKS.labels("bad_resource").inc()
            raise _forbidden()
        if state == "sync":  # the handshake sent when a channel is created: nothing changed
            WEBHOOKS.labels("sync").inc()
            return "sync"
        await repo.request_sync(conn, cal["connection_id"])
    await wake(deps.redis)
    WEBHOOKS.labels("queued").inc()
    return "queued"


def _forbidden():
    from eindr_common.errors import Forbidden

    return Forbidden("The channel token does not match", code="invalid_channel_token")


async def wake(redis: aioredis.Redis) -> None:
    try:
        await redis.lpush(WAKE_KEY, "1")
        await redis.ltrim(WAKE_KEY, 0, 99)
    except Exception:  # noqa: BLE001 (the worker polls anyway; a wake-up is only a shortcut)
        log.warning("could not wake the sync worker")


# ================================================================ reminder events (consumer side)

SKIP_EVENTS = {"reminder.fired", "reminder.delivered"}


async def on_reminder_event(deps: Deps, event_type: str, payload: dict[str, Any]) -> None:
    uid = payload.get("uid") or payload.get("user_id")
    if event_type == "reminders.bulk_created" and uid:
        for rid in payload.get("reminder_ids") or []:
            await on_reminder_event(deps, "reminder.created", {"uid": uid, "reminder_id": rid})
        return
    if event_type == "reminders.cancelled" and uid:
        # cancel-by-filter names no ids: re-check every reminder this user has linked (the
        # push re-reads each one; the cancelled ones lose their event)
        async with deps.pool.acquire() as conn:
            async with conn.transaction():
                rows = await conn.fetch("SELECT DISTINCT connection_id, reminder_id FROM calendar.links WHERE user_id = $1", uid)
                for row in rows:
                    await repo.enqueue_outbound(conn, row["connection_id"], uid, row["reminder_id"], "upsert")
            await repo.request_syncs(conn, list({r["connection_id"] for r in rows}))
        if rows:
            await wake(deps.redis)
        return
    if not event_type.startswith("reminder.") or event_type in SKIP_EVENTS:
        return
    reminder = payload.get("reminder") if isinstance(payload.get("reminder"), dict) else None
    uid = payload.get("uid") or payload.get("user_id") or (reminder or {}).get("uid")
    rid = payload.get("id") or payload.get("reminder_id") or (reminder or {}).get("id")
    if not uid or not rid:
        log.warning("reminder event without uid/id; ignored", extra={"fields": {"type": event_type}})
        return
    try:
        reminder_id = uuid.UUID(str(rid))
    except ValueError:
        return
    op = "delete" if event_type == "reminder.deleted" else "upsert"
    source = payload.get("source") or (reminder or {}).get("source")
    async with deps.pool.acquire() as conn:
        async with conn.transaction():
            linked = set(await repo.connections_linked_to(conn, uid, reminder_id))
            targets = set()
            if source != "calendar":
                targets = {r["id"] for r in await repo.active_connections_of_user(conn, uid)}
            for connection_id in linked | targets:
                await repo.enqueue_outbound(conn, connection_id, uid, reminder_id, op)
        # Only once the queue rows are committed: a run that started before this request
        # cannot have missed them unless it is told to run again (repo.request_sync).
        await repo.request_syncs(conn, list(linked | targets))
    if linked or targets:
        await wake(deps.redis)


async def on_user_event(deps: Deps, event_type: str, payload: dict[str, Any]) -> None:
    if event_type != "user.deleted":
        return
    uid = payload.get("uid") or payload.get("user_id")
    if not uid:
        return
    async with deps.pool.acquire() as conn:
        rows = await repo.user_connection_ids(conn, uid)
    for row in rows:
        if row["provider"] == "google":
            await stop_channels(deps, row["id"])
    async with deps.pool.acquire() as conn, conn.transaction():
        await repo.erase_user(conn, uid)


# ================================================================ the sync engine

@dataclass
class RemoteItem:
    uid: str | None
    href: str | None
    etag: str | None
    ev: domain.EventData | None
    error: str | None = None
    # compare by content even when the ETag is the one last synced: a Google series whose
    # occurrences changed keeps its own ETag, but its reminder's EXDATEs change
    recheck: bool = False


@dataclass
class RunState:
    changes_in: int = 0
    changes_out: int = 0
    full_resync: bool = False
    errors: list[dict[str, Any]] = field(default_factory=list)

    def error(self, where: str, message: str, **extra: Any) -> None:
        self.errors.append({"where": where, "message": message[:500], **extra})


@dataclass
class DiscoveredCalendar:
    remote_id: str
    name: str | None
    timezone: str | None = None
    primary: bool = False


class Remote:
    """Provider-neutral view of one connection's server for one run (calls run in threads)."""

    requests: int = 0

    async def discover(self) -> list[DiscoveredCalendar]:
        """The account's calendars Eindr can write to, as the server lists them now."""
        raise NotImplementedError

    async def pull(self, cal: asyncpg.Record, links: dict[str, asyncpg.Record], state: RunState) -> tuple[list[RemoteItem], list[asyncpg.Record], dict[str, Any]]:
        raise NotImplementedError

    async def write(self, cal: asyncpg.Record, ev: domain.EventData, link: asyncpg.Record | None) -> tuple[str, str | None, str | None, datetime | None]:
        """Create (no link) or update the linked event, conditional on the link's ETag:
        ``PreconditionFailed`` when the event changed or went away since the last sync."""
        raise NotImplementedError

    async def read(self, cal: asyncpg.Record, link: asyncpg.Record) -> tuple[str | None, domain.EventData | None]:
        """(etag, event) as the server has it now; event None when it is deleted."""
        raise NotImplementedError

    async def remove(self, cal: asyncpg.Record, link: asyncpg.Record) -> None:
        """Delete the linked event (one occurrence: just that occurrence), conditional on the
        link's ETag: ``PreconditionFailed`` when it changed since the last sync."""
        raise NotImplementedError

    def close(self) -> None:
        pass


PRECONDITION = (cd.PreconditionFailed, g.PreconditionFailed)


class CalDAVRemote(Remote):
    def __init__(self, deps: Deps, row: asyncpg.Record) -> None:
        self.deps, self.s = deps, deps.settings
        self.account = cd.CalDAVAccount(row["server_url"], row["username"], deps.crypto.decrypt(row["secret_enc"]),
                                        timeout_s=self.s.calendar_http_timeout_s)

    @property
    def requests(self) -> int:  # type: ignore[override]
        return self.account.requests

    def close(self) -> None:
        self.account.close()

    async def discover(self):
        _, calendars = await asyncio.to_thread(self.account.discover)
        return [DiscoveredCalendar(remote_id=c.url, name=c.name) for c in calendars]

    async def pull(self, cal, links, state):
        url = cal["remote_id"]
        ctag, _ = await asyncio.to_thread(self.account.probe, url)
        if ctag and cal["ctag"] == ctag and cal["sync_token"]:
            return [], [], {}
        full = False
        try:
            token, changed, removed = await asyncio.to_thread(self.account.changes, url, cal["sync_token"])
        except cd.InvalidSyncToken:
            full = True
            state.full_resync = True
            token, changed, removed = await asyncio.to_thread(self.account.changes, url, None)
        if cal["sync_token"] is None:
            full = True
        # one object holds a series and its edited occurrences: several links per href
        by_href: dict[str, list[asyncpg.Record]] = {}
        for lk in links.values():
            if lk["href"]:
                by_href.setdefault(lk["href"], []).append(lk)
        deleted = [lk for h in removed for lk in by_href.get(h, [])]
        if full:
            present = {c.href for c in changed}
            deleted += [lk for h, lks in by_href.items() if h not in present for lk in lks]

        def synced(c: cd.Change) -> bool:
            lks = by_href.get(c.href)
            return bool(lks and c.etag and all(lk["etag"] == c.etag for lk in lks))

        changed = [c for c in changed if not synced(c)]
        items: list[RemoteItem] = []
        batch = max(1, self.s.calendar_caldav_batch)
        hrefs = [c.href for c in changed]
        for i in range(0, len(hrefs), batch):
            for f in await asyncio.to_thread(self.account.fetch, url, hrefs[i:i + batch]):
                if f.data is None:
                    continue
                try:
                    obj = ical.parse_object(f.data)
                except ical.MalformedEvent as exc:
                    items.append(RemoteItem(None, f.href, f.etag, None, error=str(exc)))
                    continue
                except Exception as exc:  # noqa: BLE001 (any parser failure skips only this item)
                    items.append(RemoteItem(None, f.href, f.etag, None, error=f"unreadable iCalendar ({type(exc).__name__})"))
                    continue
                if obj.master is not None:
                    items.append(RemoteItem(obj.master.uid, f.href, f.etag, obj.master))
                live = {o.uid for o in obj.overrides if not o.cancelled}
                items += [RemoteItem(o.uid, f.href, f.etag, o) for o in obj.overrides if not o.cancelled]
                # an occurrence no longer edited on its own (back in the series) or cancelled
                deleted += [lk for lk in by_href.get(f.href, []) if lk["master_uid"] and lk["remote_uid"] not in live]
        return items, deleted, {"sync_token": token, "ctag": ctag}

    async def _advance(self, cal, href: str, before: str | None, after: str | None) -> None:
        """Our own write changed the object's ETag: the other links of that object (the
        series and its occurrences) that were current are current still."""
        if before and after:
            async with self.deps.pool.acquire() as conn:
                await repo.advance_href_etag(conn, cal["id"], href, before, after)

    async def _current(self, link) -> tuple[str, str | None, str]:
        """(url, etag, text) of the linked object, checked against the link's ETag."""
        url = self.account.href_url(link["href"])
        etag, text = await asyncio.to_thread(self.account.get, url)
        if text is None:
            raise cd.PreconditionFailed("the event was deleted on the server")
        if link["etag"] and etag and etag != link["etag"]:
            raise cd.PreconditionFailed("the event changed on the server")
        return url, etag or link["etag"], text

    async def write(self, cal, ev, link):
        if link is not None and link["href"]:
            # Merge into the object as the server has it: only what Eindr syncs changes; the
            # occurrences edited in the calendar and every other property stay.
            url, etag_before, text = await self._current(link)
            try:
                ics = ical.merge_event(text, ev, master_uid=link["master_uid"] or link["remote_uid"],
                                       recurrence_id=link["recurrence_id"], event_minutes=self.s.calendar_event_minutes)
            except ical.MalformedEvent:
                if link["recurrence_id"]:
                    raise
                ics = ical.build_calendar(ev, event_minutes=self.s.calendar_event_minutes)
            etag = await asyncio.to_thread(lambda: self.account.put(url, ics, etag=etag_before))
            href = unquote(urlparse(url).path)
            await self._advance(cal, link["href"], etag_before, etag)
            return link["remote_uid"], href, etag, ev.modified_at
        ics = ical.build_calendar(ev, event_minutes=self.s.calendar_event_minutes)
        url = self.account.object_url(cal["remote_id"], ev.uid)
        etag = await asyncio.to_thread(lambda: self.account.put(url, ics, create=True))
        return ev.uid, unquote(urlparse(url).path), etag, ev.modified_at

    async def read(self, cal, link):
        etag, text = await asyncio.to_thread(self.account.get, self.account.href_url(link["href"]))
        if text is None:
            return None, None
        found = ical.parse_object(text).find(link["remote_uid"])
        if found is None or found.cancelled:
            return etag, None
        return etag, found

    async def remove(self, cal, link):
        if not link["href"]:
            return
        if link["recurrence_id"]:
            try:
                url, etag_before, text = await self._current(link)
            except cd.PreconditionFailed:
                etag, _ = await asyncio.to_thread(self.account.get, self.account.href_url(link["href"]))
                if etag is None:
                    return  # the whole object is gone already
                raise
            rest = ical.drop_occurrence(text, master_uid=link["master_uid"], recurrence_id=link["recurrence_id"])
            if rest is None:
                await asyncio.to_thread(lambda: self.account.delete(url, etag=etag_before))
                return
            etag = await asyncio.to_thread(lambda: self.account.put(url, rest, etag=etag_before))
            await self._advance(cal, link["href"], etag_before, etag)
            return
        await asyncio.to_thread(lambda: self.account.delete(self.account.href_url(link["href"]), etag=link["etag"]))


def _google_api(deps: Deps, row: asyncpg.Record) -> g.GoogleCalendar:
    return g.GoogleCalendar(deps.settings, access_token=deps.crypto.decrypt(row["access_token_enc"]),
                            refresh_token=deps.crypto.decrypt(row["secret_enc"]), expires_at=row["access_expires_at"])


def _writable(item: dict[str, Any]) -> bool:
    return item.get("accessRole") in (None, "owner", "writer")


class GoogleRemote(Remote):
    def __init__(self, deps: Deps, row: asyncpg.Record) -> None:
        self.deps, self.s = deps, deps.settings
        self.api = _google_api(deps, row)

    @property
    def requests(self) -> int:  # type: ignore[override]
        return self.api.requests

    async def discover(self):
        items = await asyncio.to_thread(self.api.calendars)
        return [DiscoveredCalendar(remote_id=i["id"], name=i.get("summaryOverride") or i.get("summary"), timezone=i.get("timeZone"),
                                   primary=bool(i.get("primary"))) for i in items if _writable(i)]

    async def _skip_exceptions(self, cal, series: list[domain.EventData]) -> None:
        """Each series skips its occurrences that Google lists as exceptions (moved or
        cancelled instances): Google never writes them as EXDATEs of the series."""
        series = [ev for ev in series if ev.rrule]
        if not series:
            return
        async with self.deps.pool.acquire() as conn:
            rows = await repo.exceptions_of(conn, cal["id"], [ev.uid for ev in series])
        keys: dict[str, list[str]] = {}
        for r in rows:
            try:
                keys.setdefault(r["master_uid"], []).append(g.original_key(r["original_start"]))
            except ValueError:
                continue
        for ev in series:
            domain.skip_occurrences(ev, keys.get(ev.uid, []))

    async def pull(self, cal, links, state):
        full = cal["sync_token"] is None
        try:
            raw, token = await asyncio.to_thread(self.api.list_events, cal["remote_id"], cal["sync_token"])
        except g.SyncTokenGone:
            full = True
            state.full_resync = True
            raw, token = await asyncio.to_thread(self.api.list_events, cal["remote_id"], None)
        items: list[RemoteItem] = []
        deleted: list[asyncpg.Record] = []
        seen: set[str] = set()
        touched: set[str] = set()  # series with an occurrence changed in this page
        async with self.deps.pool.acquire() as conn:
            if full:
                await repo.clear_exceptions(conn, cal["id"])
            for item in raw:
                uid = str(item.get("id"))
                try:
                    ev = g.parse_event(item)
                except (ValueError, KeyError, TypeError) as exc:
                    items.append(RemoteItem(uid, None, item.get("etag"), None, error=f"unreadable event ({type(exc).__name__})"))
                    seen.add(uid)
                    continue
                if ev.master_uid:
                    touched.add(ev.master_uid)
                    await repo.upsert_exception(conn, cal["id"], ev.master_uid, uid, item.get("originalStartTime") or {}, ev.cancelled)
                if ev.cancelled:
                    if uid in links:
                        deleted.append(links[uid])
                    if not ev.master_uid:  # the whole series is gone, its edited occurrences with it
                        deleted += [lk for lk in links.values() if lk["master_uid"] == uid and lk not in deleted]
                        await repo.delete_exceptions(conn, cal["id"], uid)
                    continue
                seen.add(uid)
                link = links.get(uid)
                if link is not None and item.get("etag") and link["etag"] == item.get("etag") and uid not in touched:
                    continue
                items.append(RemoteItem(uid, None, item.get("etag"), ev))
        gone = {lk["remote_uid"] for lk in deleted}
        in_page = {it.uid for it in items if it.ev is not None and not it.ev.master_uid}
        for master in sorted(touched - in_page - gone):
            # an occurrence changed but its series did not: read the series again, its
            # reminder skips one more (or one fewer) occurrence
            if master not in links:
                continue
            got = await asyncio.to_thread(self.api.get_event, cal["remote_id"], master)
            if got is None or got.get("status") == "cancelled":
                continue
            try:
                items.append(RemoteItem(master, None, got.get("etag"), g.parse_event(got), recheck=True))
            except (ValueError, KeyError, TypeError) as exc:
                items.append(RemoteItem(master, None, got.get("etag"), None, error=f"unreadable event ({type(exc).__name__})"))
        for it in items:  # a series in this page whose ETag did not move still needs a look
            if it.ev is not None and it.uid in touched:
                it.recheck = True
        await self._skip_exceptions(cal, [it.ev for it in items if it.ev is not None and not it.ev.master_uid])
        if full:
            deleted += [lk for uid, lk in links.items() if uid not in seen and lk not in deleted]
        return items, deleted, {"sync_token": token}

    async def _kept_exceptions(self, cal, master_uid: str) -> set[str]:
        async with self.deps.pool.acquire() as conn:
            rows = await repo.exceptions_of(conn, cal["id"], [master_uid])
        out = set()
        for r in rows:
            if not r["cancelled"]:
                with contextlib.suppress(ValueError):
                    out.add(g.original_key(r["original_start"]))
        return out

    async def write(self, cal, ev, link):
        instance = bool(link is not None and link["master_uid"])
        keep = await self._kept_exceptions(cal, link["remote_uid"]) if link is not None and not instance and ev.rrule else set()
        body = g.event_body(ev, event_minutes=self.s.calendar_event_minutes, instance=instance, keep_exceptions=keep)
        try:
            if link is not None:
                item = await asyncio.to_thread(lambda: self.api.patch_event(cal["remote_id"], link["remote_uid"], body, etag=link["etag"]))
            else:
                item = await asyncio.to_thread(self.api.insert_event, cal["remote_id"], body)
        except g.NotFound as exc:
            if link is None:
                raise
            raise g.PreconditionFailed("the event was deleted") from exc
        if link is not None and item.get("status") == "cancelled":
            raise g.PreconditionFailed("the event was deleted")
        modified = datetime.fromisoformat(item["updated"]) if item.get("updated") else None
        return str(item["id"]), None, item.get("etag"), modified

    async def read(self, cal, link):
        item = await asyncio.to_thread(self.api.get_event, cal["remote_id"], link["remote_uid"])
        if item is None or item.get("status") == "cancelled":
            return None, None
        ev = g.parse_event(item)
        if not ev.master_uid:
            await self._skip_exceptions(cal, [ev])
        return item.get("etag"), ev

    async def remove(self, cal, link):
        # Read first: the ETag check is ours, so it holds whether or not the server honours
        # If-Match on DELETE. Deleting one instance cancels just that occurrence.
        item = await asyncio.to_thread(self.api.get_event, cal["remote_id"], link["remote_uid"])
        if item is None or item.get("status") == "cancelled":
            return
        if link["etag"] and item.get("etag") != link["etag"]:
            raise g.PreconditionFailed("the event changed")
        await asyncio.to_thread(lambda: self.api.delete_event(cal["remote_id"], link["remote_uid"], etag=item.get("etag")))

    async def ensure_channels(self, deps: Deps, cals: list[asyncpg.Record]) -> None:
        s = self.s
        if not s.calendar_webhook_url:
            return
        horizon = utcnow() + timedelta(seconds=s.calendar_channel_renew_before_s)
        for cal in cals:
            if not cal["sync_enabled"]:
                continue
            if cal["channel_id"] and cal["channel_expires_at"] and cal["channel_expires_at"] > horizon:
                continue
            channel_id = str(uuid.uuid4())
            token = secrets.token_urlsafe(32)
            resp = await asyncio.to_thread(self.api.watch, cal["remote_id"], channel_id=channel_id, token=token,
                                           address=s.calendar_webhook_url, ttl_s=s.calendar_channel_ttl_s)
            exp_ms = resp.get("expiration")
            expires = (datetime.fromtimestamp(int(exp_ms) / 1000, UTC) if exp_ms
                       else utcnow() + timedelta(seconds=s.calendar_channel_ttl_s))
            async with deps.pool.acquire() as conn:
                await repo.update_calendar(conn, cal["id"], channel_id=channel_id, channel_token_hash=token_hash(token),
                                           channel_resource_id=resp.get("resourceId"), channel_expires_at=expires)
            if cal["channel_id"]:  # the new channel is live: stop the old one (overlap, nothing missed)
                try:
                    await asyncio.to_thread(self.api.stop, cal["channel_id"], cal["channel_resource_id"] or "")
                except g.GoogleError:
                    pass

    async def save_tokens(self, deps: Deps, connection_id: uuid.UUID, before: str | None) -> None:
        token, expiry, refresh = self.api.token_state
        if token and token != before:
            async with deps.pool.acquire() as conn:
                await repo.update_connection(conn, connection_id, access_token_enc=deps.crypto.encrypt(token),
                                             access_expires_at=expiry, secret_enc=deps.crypto.encrypt(refresh))


class _Lock:
    """Per-connection advisory lock on a dedicated connection: one run at a time."""

    def __init__(self, pool: asyncpg.Pool, connection_id: uuid.UUID) -> None:
        self.pool, self.key = pool, f"calendar-sync:{connection_id}"
        self.conn: asyncpg.Connection | None = None

    async def acquire(self, wait_s: float) -> bool:
        self.conn = await self.pool.acquire()
        deadline = time.monotonic() + wait_s
        while True:
            if await self.conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", self.key):
                return True
            if time.monotonic() >= deadline:
                await self.pool.release(self.conn)
                self.conn = None
                return False
            await asyncio.sleep(0.05)

    async def release(self) -> None:
        if self.conn is not None:
            try:
                await self.conn.execute("SELECT pg_advisory_unlock(hashtext($1))", self.key)
            finally:
                await self.pool.release(self.conn)
                self.conn = None


async def run_sync(deps: Deps, connection_id: uuid.UUID, *, trigger: str, wait: bool = False) -> asyncpg.Record | None:
    """One sync run of one connection. Never raises for the connection's own failures: they
    are recorded on the run and the connection (status, backoff)."""
    lock = _Lock(deps.pool, connection_id)
    if not await lock.acquire(deps.settings.calendar_sync_timeout_s if wait else 0):
        if wait:
            raise ServiceUnavailable("A sync of this connection is still running", code="sync_busy")
        # Another run holds it (e.g. a manual sync): release our claim so that this
        # connection is claimed again shortly, not when the lease would have expired.
        async with deps.pool.acquire() as conn:
            await repo.retry_claim_soon(conn, connection_id)
        return None
    try:
        async with deps.pool.acquire() as conn:
            row = await repo.get_connection_secrets(conn, connection_id)
            if row is None or row["status"] != "active":
                if row is not None:
                    await repo.update_connection(conn, connection_id, lease_until=None)
                return None
            run_id, started = await repo.start_run(conn, connection_id, row["user_id"], trigger)
        t0 = time.monotonic()
        state = RunState()
        remote: Remote | None = None
        status: str | None = None
        ok = True
        error_text: str | None = None
        try:
            remote = CalDAVRemote(deps, row) if row["provider"] == "caldav" else GoogleRemote(deps, row)
            before_token = None
            if isinstance(remote, GoogleRemote):
                before_token = remote.api.credentials.token
                await asyncio.to_thread(remote.api.ensure_fresh)
            await asyncio.wait_for(_sync_body(deps, row, remote, state), deps.settings.calendar_sync_timeout_s)
            if isinstance(remote, GoogleRemote):
                await remote.save_tokens(deps, connection_id, before_token)
        except cd.CalDAVAuthError:
            ok, status = False, "failed"
            error_text = "The CalDAV server rejected the username or password; update the password (PATCH the connection)"
        except SecretUnreadable:
            ok, status = False, "failed"
            error_text = "The stored credentials cannot be decrypted with the configured keys (EINDR_CALENDAR_ENCRYPTION_KEYS)"
        except g.GrantRevoked as exc:
            ok, status = False, "needs_reauth"
            error_text = f"Google revoked access ({str(exc)[:120]}); connect Google again"
        except (cd.CalDAVError, g.GoogleError, UpstreamError, OSError, TimeoutError) as exc:
            ok = False
            error_text = f"{type(exc).__name__}: {str(exc)[:300]}"
        except Exception as exc:  # one connection's bug must not stop the worker or the others
            log.exception("sync run failed", extra={"fields": {"connection": str(connection_id)}})
            ok = False
            error_text = f"internal error ({type(exc).__name__})"
        finally:
            if remote is not None:
                remote.close()
        if error_text:
            state.error("run", error_text)
        run_status = "failed" if not ok else ("partial" if state.errors else "succeeded")
        s = deps.settings
        next_in = row["poll_interval_s"] if ok else domain.backoff_s(row["failures"] + 1, s.calendar_backoff_base_s, s.calendar_backoff_max_s)
        async with deps.pool.acquire() as conn:
            run = await repo.finish_run(conn, run_id, status=run_status, changes_in=state.changes_in, changes_out=state.changes_out,
                                        requests=(remote.requests if remote else 0) + 0, full_resync=state.full_resync,
                                        errors=state.errors)
            await repo.finish_lease(conn, connection_id, ok=ok, next_in_s=next_in, error=error_text, run_started=started,
                                    status=status)
        log.info("sync run finished", extra={"fields": {
            "connection": str(connection_id), "trigger": trigger, "status": run_status, "changes_in": state.changes_in,
            "changes_out": state.changes_out, "seconds": round(time.monotonic() - t0, 3), "error": error_text}})
        RUNS.labels(row["provider"], run_status).inc()
        RUN_SECONDS.labels(row["provider"]).observe(time.monotonic() - t0)
        CHANGES.labels(row["provider"], "in").inc(state.changes_in)
        CHANGES.labels(row["provider"], "out").inc(state.changes_out)
        return run
    finally:
        await lock.release()


async def _sync_body(deps: Deps, row: asyncpg.Record, remote: Remote, state: RunState) -> None:
    connection_id = row["id"]
    if _discovery_due(deps, row):
        await _rediscover(deps, row, remote, state)
    async with deps.pool.acquire() as conn:
        cals = await repo.list_calendars(conn, connection_id)
    if isinstance(remote, GoogleRemote):
        await remote.ensure_channels(deps, cals)
    await _push(deps, row, remote, state, {c["id"]: c for c in cals})
    for cal in cals:
        if not cal["sync_enabled"]:
            continue
        async with deps.pool.acquire() as conn:
            links = {lk["remote_uid"]: lk for lk in await repo.links_of_calendar(conn, cal["id"])}
        items, deleted, new_state = await remote.pull(cal, links, state)
        # Items of one calendar are independent (distinct UIDs): apply them with bounded
        # concurrency, so a 5,000-event initial sync is not 5,000 sequential round trips.
        gate = asyncio.Semaphore(deps.settings.calendar_apply_concurrency)

        imports: list[tuple[RemoteItem, domain.EventData, str]] = []

        async def apply(item: RemoteItem, cal: asyncpg.Record = cal, gate: asyncio.Semaphore = gate,
                        imports: list = imports) -> None:
            async with gate:
                try:
                    await _apply_remote(deps, row, remote, cal, item, state, imports)
                except UpstreamError as exc:
                    state.error("event", f"reminders refused it: {exc.detail}", uid=item.uid, href=item.href)

        async def delete(link: asyncpg.Record, cal: asyncpg.Record = cal, gate: asyncio.Semaphore = gate) -> None:
            async with gate:
                await _apply_remote_delete(deps, row, remote, cal, link, state)

        await asyncio.gather(*(apply(i) for i in items))
        await _bulk_import(deps, row, cal, imports, state, gate)
        unique = {lk["id"]: lk for lk in deleted}
        await asyncio.gather(*(delete(lk) for lk in unique.values()))
        if new_state:
            async with deps.pool.acquire() as conn:
                await repo.update_calendar(conn, cal["id"], **new_state)


# ---------------------------------------------------------------- calendars added / removed on the account

def _discovery_due(deps: Deps, row: asyncpg.Record) -> bool:
    checked = row["calendars_checked_at"]
    return checked is None or utcnow() - checked >= timedelta(seconds=deps.settings.calendar_rediscover_s)


async def _rediscover(deps: Deps, row: asyncpg.Record, remote: Remote, state: RunState) -> None:
    """Calendars created on the account since connecting join the connection (synced, like
    the ones found at connect time); calendars deleted there leave it with their links (the
    reminders made from them stay, as on disconnect). A failed lookup changes nothing."""
    try:
        found = await remote.discover()
    except (cd.CalDAVAuthError, g.GrantRevoked):
        raise
    except (cd.CalDAVError, g.GoogleError, OSError) as exc:
        state.error("discovery", f"{type(exc).__name__}: {str(exc)[:200]}")
        return
    connection_id, uid = row["id"], row["user_id"]
    gone: list[asyncpg.Record] = []
    async with deps.pool.acquire() as conn, conn.transaction():
        known = {c["remote_id"]: c for c in await repo.list_calendars(conn, connection_id)}
        for cal in found:
            await repo.upsert_calendar(conn, connection_id=connection_id, user_id=uid, remote_id=cal.remote_id, name=cal.name,
                                       timezone=cal.timezone)
        if found:  # an empty answer is more likely a server hiccup than an account without calendars
            present = {c.remote_id for c in found}
            gone = [c for rid, c in known.items() if rid not in present]
            for cal in gone:
                await repo.delete_calendar(conn, cal["id"])
            if await repo.target_calendar(conn, connection_id) is None:
                pick = next((c for c in found if c.primary), found[0])
                rows = {c["remote_id"]: c for c in await repo.list_calendars(conn, connection_id)}
                await repo.update_calendar(conn, rows[pick.remote_id]["id"], is_target=True)
        await repo.update_connection(conn, connection_id, calendars_checked_at=utcnow())
    added = [c.remote_id for c in found if c.remote_id not in known]
    if added or gone:
        log.info("calendar list changed", extra={"fields": {"connection": str(connection_id), "added": len(added), "removed": len(gone)}})
    if isinstance(remote, GoogleRemote):
        for cal in gone:
            if cal["channel_id"]:
                with contextlib.suppress(g.GoogleError):
                    await asyncio.to_thread(remote.api.stop, cal["channel_id"], cal["channel_resource_id"] or "")


# ---------------------------------------------------------------- Eindr -> calendar

async def _push(deps: Deps, row: asyncpg.Record, remote: Remote, state: RunState, cals: dict[uuid.UUID, asyncpg.Record]) -> None:
    connection_id, uid = row["id"], row["user_id"]
    async with deps.pool.acquire() as conn:
        queue = await repo.outbound_of(conn, connection_id)
        target = await repo.target_calendar(conn, connection_id)
    for item in queue:
        rid = item["reminder_id"]
        async with deps.pool.acquire() as conn:
            link = await repo.link_by_reminder(conn, connection_id, rid)
        try:
            reminder = None if item["op"] == "delete" else await deps.reminders.get(uid, rid)
            cal = cals.get(link["calendar_id"]) if link else target
            if reminder is None or not domain.reminder_is_live(reminder):
                if link is not None and cal is not None:
                    await _remove_remote(deps, row, remote, cal, link, reminder, state)
            elif cal is not None and (link is not None or reminder.get("source") != "calendar"):
                await _push_one(deps, row, remote, cal, reminder, link, state)
        except (cd.CalDAVAuthError, g.GrantRevoked):
            raise
        except (cd.CalDAVError, g.GoogleError, UpstreamError, ical.MalformedEvent) as exc:
            state.error("push", f"{type(exc).__name__}: {str(exc)[:200]}", reminder_id=str(rid))
            async with deps.pool.acquire() as conn:
                await repo.fail_outbound(conn, connection_id, rid)
            continue
        async with deps.pool.acquire() as conn:
            await repo.done_outbound(conn, connection_id, rid, item["queued_at"])


async def _push_one(deps: Deps, row: asyncpg.Record, remote: Remote, cal: asyncpg.Record, reminder: dict[str, Any],
                    link: asyncpg.Record | None, state: RunState) -> None:
    r_ev = domain.reminder_to_event(reminder, uid=link["remote_uid"] if link else None)
    r_fp = r_ev.fingerprint()
    r_mod = domain._parse_dt(reminder.get("updated_at"))
    if link is not None and link["reminder_hash"] == r_fp:
        return  # nothing changed on our side since the last sync (e.g. our own patch echoing back)
    try:
        remote_uid, href, etag, modified = await remote.write(cal, r_ev, link)
    except PRECONDITION:
        if link is None:
            raise
        # The event changed (or went away) on the server since we last saw it: both sides changed.
        etag_now, remote_ev = await remote.read(cal, link)
        if remote_ev is None:
            await _edit_beats_calendar_deletion(deps, row, remote, cal, link, reminder, state)
            return
        res = domain.resolve(reminder_changed=True, remote_changed=remote_ev.fingerprint() != link["event_hash"],
                             reminder_modified=r_mod, remote_modified=remote_ev.modified_at)
        if res.conflict:
            await _log_conflict(deps, row, link, reminder, r_ev, remote_ev, res.winner)
        if res.winner == "remote":
            patched = await deps.reminders.patch(row["user_id"], link["reminder_id"], domain.patch_body(remote_ev))
            state.changes_in += 1
            await _save_link(deps, row, cal, link["reminder_id"], link["remote_uid"], link["href"], etag_now, link["origin"],
                             remote_ev.fingerprint(), patched or reminder, remote_ev.modified_at, like=link)
            return
        forced = dict(link)
        forced["etag"] = etag_now
        remote_uid, href, etag, modified = await remote.write(cal, r_ev, forced)
    state.changes_out += 1
    await _save_link(deps, row, cal, uuid.UUID(str(reminder["id"])), remote_uid, href, etag,
                     link["origin"] if link else "eindr", r_fp, reminder, modified, like=link)


async def _remove_remote(deps: Deps, row: asyncpg.Record, remote: Remote, cal: asyncpg.Record, link: asyncpg.Record,
                         reminder: dict[str, Any] | None, state: RunState) -> None:
    """The reminder was deleted or cancelled in Eindr: its event goes too, unless the
    calendar edited the event since the last sync (delete vs edit: the edit wins)."""
    try:
        await remote.remove(cal, link)
    except PRECONDITION:
        etag_now, remote_ev = await remote.read(cal, link)
        if remote_ev is not None and remote_ev.fingerprint() != link["event_hash"]:
            await _edit_beats_eindr_deletion(deps, row, cal, link, reminder, remote_ev, etag_now, link["href"], state)
            return
        if remote_ev is not None:  # only the ETag moved: the content is what we last synced
            forced = dict(link)
            forced["etag"] = etag_now
            await remote.remove(cal, forced)
    state.changes_out += 1
    async with deps.pool.acquire() as conn:
        await repo.delete_link(conn, link["id"])


async def _save_link(deps: Deps, row: asyncpg.Record, cal: asyncpg.Record, reminder_id: uuid.UUID, remote_uid: str,
                     href: str | None, etag: str | None, origin: str, event_hash: str, reminder: dict[str, Any],
                     remote_modified: datetime | None, *, ev: domain.EventData | None = None,
                     like: asyncpg.Record | None = None) -> None:
    """``ev`` (the event as pulled) or ``like`` (the link as it was) tells whether the link
    is one occurrence of a series."""
    master_uid = ev.master_uid if ev is not None else (like["master_uid"] if like is not None else None)
    recurrence_id = ev.recurrence_id if ev is not None else (like["recurrence_id"] if like is not None else None)
    r_fp = domain.reminder_to_event(reminder, uid=remote_uid).fingerprint()
    async with deps.pool.acquire() as conn:
        await repo.upsert_link(conn, user_id=row["user_id"], connection_id=row["id"], calendar_id=cal["id"], reminder_id=reminder_id,
                               remote_uid=remote_uid, href=href, etag=etag, origin=origin, event_hash=event_hash,
                               reminder_hash=r_fp, remote_modified_at=remote_modified,
                               reminder_modified_at=domain._parse_dt(reminder.get("updated_at")),
                               master_uid=master_uid, recurrence_id=recurrence_id)


# ---------------------------------------------------------------- conflicts

def _reminder_version(reminder: dict[str, Any]) -> dict[str, Any]:
    return {k: reminder.get(k) for k in ("title", "notes", "due_at", "local_due", "timezone", "rrule", "exdates", "alarms", "status",
                                         "updated_at")}


async def _record_conflict(deps: Deps, row: asyncpg.Record, *, reminder_id: uuid.UUID, remote_uid: str, winner: str, kind: str,
                           eindr_version: dict[str, Any], remote_version: dict[str, Any], eindr_modified_at: datetime | None,
                           remote_modified_at: datetime | None) -> None:
    CONFLICTS.labels(winner).inc()
    log.info("sync conflict", extra={"fields": {"connection": str(row["id"]), "kind": kind, "winner": winner, "remote_uid": remote_uid}})
    async with deps.pool.acquire() as conn:
        await repo.insert_conflict(
            conn, user_id=row["user_id"], connection_id=row["id"], reminder_id=reminder_id, remote_uid=remote_uid, winner=winner,
            kind=kind, eindr_version=eindr_version, remote_version=remote_version, eindr_modified_at=eindr_modified_at,
            remote_modified_at=remote_modified_at,
        )


async def _log_conflict(deps: Deps, row: asyncpg.Record, link: asyncpg.Record, reminder: dict[str, Any],
                        r_ev: domain.EventData, remote_ev: domain.EventData, winner: str) -> None:
    await _record_conflict(deps, row, reminder_id=link["reminder_id"], remote_uid=link["remote_uid"], winner=winner, kind="edit",
                           eindr_version=_reminder_version(reminder), remote_version=domain.event_summary(remote_ev),
                           eindr_modified_at=domain._parse_dt(reminder.get("updated_at")), remote_modified_at=remote_ev.modified_at)


async def _edit_beats_calendar_deletion(deps: Deps, row: asyncpg.Record, remote: Remote, cal: asyncpg.Record, link: asyncpg.Record,
                                        reminder: dict[str, Any], state: RunState) -> None:
    """Deleted in the calendar, edited in Eindr since the last sync: the edit wins; the event
    is written again (a fresh object; an occurrence comes back as an event of its own)."""
    r_ev = domain.reminder_to_event(reminder, uid=link["remote_uid"])
    remote_uid, href, etag, modified = await remote.write(cal, r_ev, None)
    state.changes_out += 1
    await _record_conflict(
        deps, row, reminder_id=link["reminder_id"], remote_uid=link["remote_uid"], winner="eindr", kind="delete_vs_edit",
        eindr_version=_reminder_version(reminder),
        remote_version={"deleted": True, "uid": link["master_uid"] or link["remote_uid"], "recurrence_id": link["recurrence_id"]},
        eindr_modified_at=domain._parse_dt(reminder.get("updated_at")), remote_modified_at=None,
    )
    async with deps.pool.acquire() as conn:
        await repo.delete_link(conn, link["id"])
    await _save_link(deps, row, cal, link["reminder_id"], remote_uid, href, etag, link["origin"], r_ev.fingerprint(), reminder,
                     modified, ev=r_ev)


async def _edit_beats_eindr_deletion(deps: Deps, row: asyncpg.Record, cal: asyncpg.Record, link: asyncpg.Record,
                                     reminder: dict[str, Any] | None, ev: domain.EventData, etag: str | None, href: str | None,
                                     state: RunState) -> None:
    """Deleted or cancelled in Eindr, edited in the calendar since the last sync: the edit
    wins; a cancelled reminder is reopened with the event's content, a deleted one is made
    again from the event (``source=calendar``)."""
    uid = row["user_id"]
    version = _reminder_version(reminder) if reminder is not None else {"id": str(link["reminder_id"])}
    version.update(deleted=True, status=(reminder or {}).get("status", "deleted"))
    fp = ev.fingerprint()
    if reminder is not None:
        await deps.reminders.reopen(uid, link["reminder_id"])
        restored = await deps.reminders.patch(uid, link["reminder_id"], domain.patch_body(ev)) or reminder
        reminder_id, origin = link["reminder_id"], link["origin"]
    else:
        key = "calendar-restore-" + hashlib.sha256(f"{row['id']}:{cal['id']}:{link['remote_uid']}:{fp}".encode()).hexdigest()[:40]
        restored = await deps.reminders.create(uid, domain.create_body(ev), idempotency_key=key)
        reminder_id, origin = uuid.UUID(str(restored["id"])), "remote"
        async with deps.pool.acquire() as conn:
            await repo.delete_link(conn, link["id"])
    state.changes_in += 1
    await _record_conflict(
        deps, row, reminder_id=reminder_id, remote_uid=link["remote_uid"], winner="remote", kind="delete_vs_edit",
        eindr_version=version, remote_version=domain.event_summary(ev),
        eindr_modified_at=domain._parse_dt((reminder or {}).get("updated_at")), remote_modified_at=ev.modified_at,
    )
    await _save_link(deps, row, cal, reminder_id, link["remote_uid"], href, etag, origin, fp, restored, ev.modified_at, like=link)


# ---------------------------------------------------------------- calendar -> Eindr

def _import_key(connection_id: uuid.UUID, calendar_id: uuid.UUID, remote_uid: str) -> str:
    return "calendar-import-" + hashlib.sha256(f"{connection_id}:{calendar_id}:{remote_uid}".encode()).hexdigest()[:40]


async def _apply_remote(deps: Deps, row: asyncpg.Record, remote: Remote, cal: asyncpg.Record, item: RemoteItem, state: RunState,
                        imports: list[tuple[RemoteItem, domain.EventData, str]] | None = None) -> None:
    if item.error is not None or item.ev is None:
        log.warning("skipped an unreadable calendar item", extra={"fields": {"href": item.href, "error": item.error}})
        state.error("event", item.error or "unreadable", uid=item.uid, href=item.href)
        return
    ev = item.ev
    uid = row["user_id"]
    async with deps.pool.acquire() as conn:
        link = await repo.link_by_uid(conn, cal["id"], ev.uid)
    fp = ev.fingerprint()
    if link is not None:
        if item.etag and link["etag"] == item.etag and not item.recheck:
            return
        if fp == link["event_hash"]:  # only the ETag moved (our own write, or a no-op edit)
            async with deps.pool.acquire() as conn:
                await repo.update_link_etag(conn, link["id"], item.etag, item.href)
            return
        reminder = await deps.reminders.get(uid, link["reminder_id"])
        if reminder is None or not domain.reminder_is_live(reminder):
            # deleted or cancelled in Eindr, edited in the calendar: the edit wins
            await _edit_beats_eindr_deletion(deps, row, cal, link, reminder, ev, item.etag, item.href or link["href"], state)
            return
        r_ev = domain.reminder_to_event(reminder, uid=link["remote_uid"])
        res = domain.resolve(reminder_changed=r_ev.fingerprint() != link["reminder_hash"], remote_changed=True,
                             reminder_modified=domain._parse_dt(reminder.get("updated_at")), remote_modified=ev.modified_at)
        if res.conflict:
            await _log_conflict(deps, row, link, reminder, r_ev, ev, res.winner)
        if res.winner == "remote":
            patched = await deps.reminders.patch(uid, link["reminder_id"], domain.patch_body(ev))
            state.changes_in += 1
            await _save_link(deps, row, cal, link["reminder_id"], link["remote_uid"], item.href or link["href"], item.etag,
                             link["origin"], fp, patched or reminder, ev.modified_at, ev=ev)
        else:
            forced = dict(link)
            forced["etag"] = item.etag
            remote_uid, href, etag, modified = await remote.write(cal, r_ev, forced)
            state.changes_out += 1
            await _save_link(deps, row, cal, link["reminder_id"], remote_uid, href or link["href"], etag, link["origin"],
                             r_ev.fingerprint(), reminder, modified, like=link)
        return
    if ev.reminder_id:
        # Eindr wrote this event (X-EINDR-REMINDER-ID / extendedProperties): never import it
        # again; re-link it if its reminder still exists and has no event here.
        try:
            rid = uuid.UUID(ev.reminder_id)
        except ValueError:
            return
        async with deps.pool.acquire() as conn:
            existing = await repo.link_by_reminder(conn, row["id"], rid)
        if existing is None:
            reminder = await deps.reminders.get(uid, rid)
            if reminder is not None:
                await _save_link(deps, row, cal, rid, ev.uid, item.href, item.etag, "eindr", fp, reminder, ev.modified_at, ev=ev)
        return
    if not domain.should_import(ev, row["import_mode"]):
        return
    if domain.is_past_one_off(ev, utcnow()):
        return
    if imports is not None:  # created in bulk after this pass
        imports.append((item, ev, fp))
        return
    await _import_one(deps, row, cal, item, ev, fp, state)


async def _import_one(deps: Deps, row: asyncpg.Record, cal: asyncpg.Record, item: RemoteItem, ev: domain.EventData, fp: str,
                      state: RunState) -> None:
    created = await deps.reminders.create(row["user_id"], domain.create_body(ev), idempotency_key=_import_key(row["id"], cal["id"], ev.uid))
    state.changes_in += 1
    await _save_link(deps, row, cal, uuid.UUID(str(created["id"])), ev.uid, item.href, item.etag, "remote", fp, created, ev.modified_at,
                     ev=ev)


BULK_IMPORT = 500  # reminders per POST /v1/reminders:bulk (the API takes up to 1,000)


async def _bulk_import(deps: Deps, row: asyncpg.Record, cal: asyncpg.Record, imports: list[tuple[RemoteItem, domain.EventData, str]],
                       state: RunState, gate: asyncio.Semaphore) -> None:
    """New events become reminders through the bulk endpoint (one call per 500). It is
    all-or-nothing, so a chunk it refuses is retried item by item: only the bad items are
    skipped (and listed on the run)."""
    for start in range(0, len(imports), BULK_IMPORT):
        chunk = imports[start:start + BULK_IMPORT]
        key = "calendar-bulk-" + hashlib.sha256(
            f"{row['id']}:{cal['id']}:".encode() + "\n".join(ev.uid for _, ev, _ in chunk).encode()).hexdigest()[:40]
        try:
            created = await deps.reminders.bulk_create(row["user_id"], [domain.create_body(ev) for _, ev, _ in chunk], idempotency_key=key)
        except UpstreamError as exc:
            if exc.status != 400:
                raise

            async def one(entry: tuple[RemoteItem, domain.EventData, str]) -> None:
                item, ev, fp = entry
                async with gate:
                    try:
                        await _import_one(deps, row, cal, item, ev, fp, state)
                    except UpstreamError as err:
                        state.error("event", f"reminders refused it: {err.detail}", uid=item.uid, href=item.href)

            await asyncio.gather(*(one(e) for e in chunk))
            continue
        state.changes_in += len(created)

        async def link(entry: tuple[RemoteItem, domain.EventData, str], reminder: dict[str, Any]) -> None:
            item, ev, fp = entry
            async with gate:
                await _save_link(deps, row, cal, uuid.UUID(str(reminder["id"])), ev.uid, item.href, item.etag, "remote", fp, reminder,
                                 ev.modified_at, ev=ev)

        await asyncio.gather(*(link(e, r) for e, r in zip(chunk, created, strict=True)))


async def _apply_remote_delete(deps: Deps, row: asyncpg.Record, remote: Remote, cal: asyncpg.Record, link: asyncpg.Record,
                               state: RunState) -> None:
    """An event deleted in the calendar: an imported reminder is deleted, a reminder Eindr
    wrote out is cancelled (the user removed it from their calendar) — unless the reminder
    was edited in Eindr since the last sync (delete vs edit: the edit wins)."""
    uid = row["user_id"]
    try:
        reminder = await deps.reminders.get(uid, link["reminder_id"])
        if reminder is not None and domain.reminder_is_live(reminder):
            r_ev = domain.reminder_to_event(reminder, uid=link["remote_uid"])
            if r_ev.fingerprint() != link["reminder_hash"]:
                await _edit_beats_calendar_deletion(deps, row, remote, cal, link, reminder, state)
                return
        if reminder is not None:
            if link["origin"] == "remote":
                await deps.reminders.delete(uid, link["reminder_id"])
            else:
                await deps.reminders.cancel(uid, link["reminder_id"])
    except UpstreamError as exc:
        state.error("delete", f"reminders refused it: {exc.detail}", reminder_id=str(link["reminder_id"]))
        return
    except (cd.CalDAVAuthError, g.GrantRevoked):
        raise
    except (cd.CalDAVError, g.GoogleError) as exc:
        state.error("delete", f"{type(exc).__name__}: {str(exc)[:200]}", reminder_id=str(link["reminder_id"]))
        return
    state.changes_in += 1
    async with deps.pool.acquire() as conn:
        await repo.delete_link(conn, link["id"])
