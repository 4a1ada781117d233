"""Google: OAuth 2.0 authorization code + PKCE (RFC 7636), and Calendar API v3 through
``google-api-python-client`` (the static discovery document it ships), authorised with
``google-auth`` credentials that refresh themselves against the configured token URL.

All base URLs come from settings, so tests reach a local server speaking the same wire
format through exactly this code. The API client is synchronous (httplib2): the service
runs these calls in a thread.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import google_auth_httplib2
import httplib2
import httpx
from google.auth.exceptions import RefreshError, TransportError
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build_from_document
from googleapiclient.discovery_cache import get_static_doc
from googleapiclient.errors import HttpError

from .domain import (
    GOOGLE_PRIVATE_KEY,
    GOOGLE_STATUS_KEY,
    EventData,
    all_day_start,
    normalize_rrule,
    recurrence_key,
)
from .settings import CalendarSettings


class GoogleError(Exception):
    pass


class GrantRevoked(GoogleError):
    """The refresh token no longer works (invalid_grant): the user must reconnect."""


class SyncTokenGone(GoogleError):
    """410 Gone on a syncToken: wipe the local state of that calendar and resync fully."""


class PreconditionFailed(GoogleError):
    """412: the event's ETag changed since we read it."""


class NotFound(GoogleError):
    pass


# ---------------------------------------------------------------- OAuth 2.0 + PKCE

def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge) per RFC 7636 section 4.1-4.2."""
    verifier = secrets.token_urlsafe(64)[:96]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).decode().rstrip("=")
    return verifier, challenge


def consent_url(settings: CalendarSettings, *, state: str, challenge: str) -> str:
    query = {
        "client_id": settings.calendar_google_client_id,
        "redirect_uri": settings.calendar_google_redirect_uri,
        "response_type": "code",
        "scope": settings.calendar_google_scope,
        "access_type": "offline",  # a refresh token
        "prompt": "consent",
        "include_granted_scopes": "true",
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return settings.calendar_google_auth_url + "?" + urlencode(query)


@dataclass
class Tokens:
    access_token: str
    refresh_token: str | None
    expires_at: datetime
    scope: str | None = None


class OAuthError(GoogleError):
    def __init__(self, error: str, description: str | None = None) -> None:
        super().__init__(f"{error}: {description or ''}".strip(": "))
        self.error = error


async def exchange_code(settings: CalendarSettings, code: str, verifier: str) -> Tokens:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": settings.calendar_google_redirect_uri,
        "client_id": settings.calendar_google_client_id,
    }
    if settings.calendar_google_client_secret:
        data["client_secret"] = settings.calendar_google_client_secret
    async with httpx.AsyncClient(timeout=settings.calendar_http_timeout_s) as client:
        try:
            r = await client.post(settings.calendar_google_token_url, data=data, headers={"accept": "application/json"})
        except httpx.HTTPError as exc:
            raise GoogleError(f"token endpoint unreachable ({type(exc).__name__})") from exc
    try:
        body = r.json()
    except ValueError:
        body = {}
    if r.status_code != 200 or "access_token" not in body:
        raise OAuthError(str(body.get("error") or f"http_{r.status_code}"), body.get("error_description"))
    return Tokens(
        access_token=body["access_token"],
        refresh_token=body.get("refresh_token"),
        expires_at=datetime.now(UTC) + timedelta(seconds=int(body.get("expires_in") or 3600)),
        scope=body.get("scope"),
    )


# ---------------------------------------------------------------- Calendar API v3

_DISCOVERY: dict[str, Any] | None = None


def _discovery() -> dict[str, Any]:
    """The Calendar v3 discovery document shipped inside google-api-python-client, parsed once."""
    global _DISCOVERY
    if _DISCOVERY is None:
        _DISCOVERY = json.loads(get_static_doc("calendar", "v3"))
    return _DISCOVERY


class _CountingHttp(httplib2.Http):
    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.requests = 0
        self._lock = threading.Lock()

    def request(self, *a, **kw):  # type: ignore[override]
        with self._lock:
            self.requests += 1
        return super().request(*a, **kw)


class GoogleCalendar:
    """One account's Calendar API client for one sync run (not shared between threads)."""

    def __init__(self, settings: CalendarSettings, *, access_token: str | None, refresh_token: str,
                 expires_at: datetime | None) -> None:
        expiry = expires_at.astimezone(UTC).replace(tzinfo=None) if expires_at else None
        self.credentials = Credentials(
            token=access_token,
            refresh_token=refresh_token,
            token_uri=settings.calendar_google_token_url,
            client_id=settings.calendar_google_client_id,
            client_secret=settings.calendar_google_client_secret or None,
            expiry=expiry,
        )
        self._http = _CountingHttp(timeout=settings.calendar_http_timeout_s)
        self._authed = google_auth_httplib2.AuthorizedHttp(self.credentials, http=self._http)
        self.service = build_from_document(
            _discovery(), http=self._authed,
            client_options={"api_endpoint": settings.calendar_google_api_base.rstrip("/") + "/calendar/v3/"},
        )

    @property
    def requests(self) -> int:
        return self._http.requests

    def ensure_fresh(self, within: timedelta = timedelta(minutes=5)) -> bool:
        """Refresh the access token if it expires soon; True when it was refreshed."""
        c = self.credentials
        if c.token and c.expiry and c.expiry - datetime.now(UTC).replace(tzinfo=None) > within:
            return False
        self._refresh()
        return True

    def _refresh(self) -> None:
        try:
            self.credentials.refresh(google_auth_httplib2.Request(self._http))
        except RefreshError as exc:
            text = str(exc)
            if "invalid_grant" in text or "unauthorized_client" in text or "invalid_client" in text:
                raise GrantRevoked(text[:300]) from exc
            raise GoogleError(f"token refresh failed: {text[:300]}") from exc
        except TransportError as exc:
            raise GoogleError(f"token endpoint unreachable: {exc}") from exc

    @property
    def token_state(self) -> tuple[str | None, datetime | None, str | None]:
        c = self.credentials
        exp = c.expiry.replace(tzinfo=UTC) if c.expiry else None
        return c.token, exp, c.refresh_token

    def _execute(self, request, *, etag: str | None = None) -> Any:
        if etag:
            request.headers["If-Match"] = etag
        try:
            return request.execute(num_retries=0)
        except RefreshError as exc:
            raise GrantRevoked(str(exc)[:300]) from exc
        except HttpError as exc:
            status = exc.resp.status
            if status == 410:
                raise SyncTokenGone("syncToken expired") from exc
            if status == 412:
                raise PreconditionFailed("event changed") from exc
            if status == 404:
                raise NotFound("not found") from exc
            if status == 401:
                raise GrantRevoked("access denied (401)") from exc
            raise GoogleError(f"Calendar API answered {status}") from exc
        except (httplib2.HttpLib2Error, OSError) as exc:
            raise GoogleError(f"Calendar API unreachable ({type(exc).__name__})") from exc

    # --- calendars
    def calendars(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token = None
        while True:
            page = self._execute(self.service.calendarList().list(pageToken=token, maxResults=250))
            items += page.get("items", [])
            token = page.get("nextPageToken")
            if not token:
                return items

    # --- events
    def list_events(self, calendar_id: str, sync_token: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """All changed events since ``sync_token`` (all events when None), and the next token."""
        items: list[dict[str, Any]] = []
        page_token = None
        while True:
            kwargs: dict[str, Any] = {"calendarId": calendar_id, "pageToken": page_token, "maxResults": 2500,
                                      "showDeleted": True, "singleEvents": False}
            if sync_token:
                kwargs["syncToken"] = sync_token
            page = self._execute(self.service.events().list(**kwargs))
            items += page.get("items", [])
            page_token = page.get("nextPageToken")
            if not page_token:
                return items, page.get("nextSyncToken")

    def get_event(self, calendar_id: str, event_id: str) -> dict[str, Any] | None:
        try:
            return self._execute(self.service.events().get(calendarId=calendar_id, eventId=event_id))
        except NotFound:
            return None

    def insert_event(self, calendar_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._execute(self.service.events().insert(calendarId=calendar_id, body=body))

    def patch_event(self, calendar_id: str, event_id: str, body: dict[str, Any], *, etag: str | None) -> dict[str, Any]:
        return self._execute(self.service.events().patch(calendarId=calendar_id, eventId=event_id, body=body), etag=etag)

    def delete_event(self, calendar_id: str, event_id: str, *, etag: str | None = None) -> None:
        try:
            self._execute(self.service.events().delete(calendarId=calendar_id, eventId=event_id), etag=etag)
        except NotFound:
            pass

    # --- push channels
    def watch(self, calendar_id: str, *, channel_id: str, token: str, address: str, ttl_s: int) -> dict[str, Any]:
        body = {"id": channel_id, "type": "web_hook", "address": address, "token": token, "params": {"ttl": str(ttl_s)}}
        return self._execute(self.service.events().watch(calendarId=calendar_id, body=body))

    def stop(self, channel_id: str, resource_id: str) -> None:
        try:
            self._execute(self.service.channels().stop(body={"id": channel_id, "resourceId": resource_id}))
        except NotFound:
            pass


# ---------------------------------------------------------------- event JSON <-> EventData

def _parse_rfc3339(value: str) -> datetime:
    return datetime.fromisoformat(value)


def original_key(original_start: dict[str, Any]) -> str:
    """``domain.recurrence_key`` of a Google ``originalStartTime``."""
    if original_start.get("dateTime"):
        at = _parse_rfc3339(original_start["dateTime"])
        if at.tzinfo is None:
            zone = original_start.get("timeZone")
            from zoneinfo import ZoneInfo

            at = at.replace(tzinfo=ZoneInfo(zone) if zone else UTC)
        return recurrence_key(at)
    if original_start.get("date"):
        return recurrence_key(date.fromisoformat(original_start["date"]))
    raise ValueError("originalStartTime without date or dateTime")


def parse_event(item: dict[str, Any]) -> EventData:
    ev = EventData(uid=str(item["id"]))
    ev.cancelled = item.get("status") == "cancelled"
    if item.get("recurringEventId"):  # one occurrence of a series, edited or cancelled on its own
        ev.master_uid = str(item["recurringEventId"])
        ev.recurrence_id = original_key(item.get("originalStartTime") or {})
    if item.get("updated"):
        ev.modified_at = _parse_rfc3339(item["updated"])
    private = (item.get("extendedProperties") or {}).get("private") or {}
    ev.reminder_id = private.get(GOOGLE_PRIVATE_KEY) or None
    ev.completed = private.get(GOOGLE_STATUS_KEY) == "completed"
    if ev.master_uid:
        ev.reminder_id = None  # an occurrence carries its series' properties; Eindr wrote the series, not it
    if ev.cancelled:
        return ev
    ev.summary = item.get("summary") or ""
    ev.description = item.get("description") or None
    start = item.get("start") or {}
    if "date" in start:
        ev.all_day = True
        ev.local_start = all_day_start(date.fromisoformat(start["date"]))
    elif "dateTime" in start:
        at = _parse_rfc3339(start["dateTime"])
        zone = start.get("timeZone")
        if zone and zone.upper() not in ("UTC", "ETC/UTC"):
            from zoneinfo import ZoneInfo

            ev.local_start = at.astimezone(ZoneInfo(zone)).replace(tzinfo=None) if at.tzinfo else at
            ev.tzid = zone
        else:
            ev.start = at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
    else:
        raise ValueError("event without start")
    for line in item.get("recurrence") or []:
        upper = line.upper()
        if upper.startswith("RRULE:"):
            ev.rrule = normalize_rrule(line[6:])
        elif upper.startswith("EXDATE"):
            _, _, values = line.partition(":")
            for v in values.split(","):
                v = v.strip()
                if not v:
                    continue
                naive = datetime.strptime(v.rstrip("Z"), "%Y%m%dT%H%M%S") if "T" in v else datetime.combine(date.fromisoformat(f"{v[:4]}-{v[4:6]}-{v[6:8]}"), (ev.local_start or datetime.min).time())
                ev.exdates.append(naive)
    rem = item.get("reminders") or {}
    overrides = rem.get("overrides") or []
    if overrides:
        ev.has_alarm = True
        ev.alarms = sorted({-60 * int(o.get("minutes", 0)) for o in overrides})
    elif rem.get("useDefault"):
        ev.has_alarm = True
        ev.alarms = [0]
    return ev


def _fmt_local(dt: datetime) -> str:
    return dt.strftime("%Y%m%dT%H%M%S")


def event_body(ev: EventData, *, event_minutes: int = 15, instance: bool = False,
               keep_exceptions: set[str] | None = None) -> dict[str, Any]:
    """The event JSON for ``ev``. ``instance``: one occurrence of a series (it has no
    recurrence of its own). ``keep_exceptions``: occurrence keys with an edited instance on
    Google's side; no EXDATE is written for them (it would delete the edited instance)."""
    body: dict[str, Any] = {"summary": ev.summary, "description": ev.description or ""}
    if ev.start is not None:
        start = ev.start.astimezone(UTC)
        body["start"] = {"dateTime": start.isoformat().replace("+00:00", "Z"), "timeZone": "UTC"}
        body["end"] = {"dateTime": (start + timedelta(minutes=event_minutes)).isoformat().replace("+00:00", "Z"), "timeZone": "UTC"}
        ex = [f"EXDATE:{_fmt_local(x)}Z" for x in ev.exdates]
    else:
        zone = ev.tzid or "UTC"
        body["start"] = {"dateTime": ev.local_start.isoformat(), "timeZone": zone}
        body["end"] = {"dateTime": (ev.local_start + timedelta(minutes=event_minutes)).isoformat(), "timeZone": zone}
        ex = [f"EXDATE;TZID={zone}:{_fmt_local(x)}" for x in ev.exdates]
    if keep_exceptions:
        ex = [line for line, x in zip(ex, ev.exdates, strict=True) if _exdate_key(ev, x) not in keep_exceptions]
    if not instance:
        body["recurrence"] = ([f"RRULE:{ev.rrule}"] if ev.rrule else []) + (ex if ev.rrule else [])
    body["reminders"] = {"useDefault": False, "overrides": [{"method": "popup", "minutes": -a // 60} for a in ev.alarms]}
    private = {GOOGLE_PRIVATE_KEY: ev.reminder_id or "", GOOGLE_STATUS_KEY: "completed" if ev.completed else ""}
    body["extendedProperties"] = {"private": private}
    return body


def _exdate_key(ev: EventData, x: datetime) -> str:
    if ev.start is not None:
        return recurrence_key(x.replace(tzinfo=UTC))
    if ev.tzid:
        from zoneinfo import ZoneInfo

        return recurrence_key(x.replace(tzinfo=ZoneInfo(ev.tzid)))
    return recurrence_key(x)


def dumps(item: dict[str, Any]) -> str:
    return json.dumps(item, sort_keys=True)
