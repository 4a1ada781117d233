"""CalDAV (RFC 4791) + WebDAV sync (RFC 6578) through the ``caldav`` library.

Discovery uses the library's standard principal / calendar-home-set lookup. The sync
primitives are single WebDAV requests sent through the library's client (auth
negotiation, session, XML parsing), so each sync step costs a known number of requests:

- ``probe``: one PROPFIND (Depth 0) for ``CS:getctag`` and ``DAV:sync-token``;
- ``changes``: one ``sync-collection`` REPORT per page; an invalid token (403/409/412 with
  ``DAV:valid-sync-token``) raises ``InvalidSyncToken`` and the caller re-enumerates;
- ``fetch``: one ``calendar-multiget`` REPORT per batch of hrefs;
- ``put``/``delete``: one request each, conditional on the ETag (``If-Match``) so a
  concurrent edit on the server is detected (412) instead of overwritten.

The library is synchronous (niquests); the service runs these calls in a thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from urllib.parse import quote, unquote, urljoin, urlparse
from xml.sax.saxutils import escape

import caldav
from caldav.lib import error as dav_error
from lxml import etree

NS = {"d": "DAV:", "c": "urn:ietf:params:xml:ns:caldav", "cs": "http://calendarserver.org/ns/", "ic": "http://apple.com/ns/ical/"}


class CalDAVError(Exception):
    """The server answered, but not as a CalDAV server should (or not at all)."""


class CalDAVAuthError(CalDAVError):
    """The server rejected the username/password (401/403)."""


class NotCalDAV(CalDAVError):
    """The URL is not a CalDAV server (no principal / calendar-home-set)."""


class InvalidSyncToken(CalDAVError):
    """The server no longer knows our sync token (RFC 6578 DAV:valid-sync-token)."""


class PreconditionFailed(CalDAVError):
    """If-Match failed: the object changed on the server since we last saw it."""


@dataclass
class RemoteCalendar:
    url: str
    name: str | None
    supports_events: bool = True


@dataclass
class Change:
    href: str
    etag: str | None


@dataclass
class Fetched:
    href: str
    etag: str | None
    data: str | None


class _CountingClient(caldav.DAVClient):
    """``DAVClient`` that counts the HTTP requests it makes (the sync run records them)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.requests = 0
        self._lock = threading.Lock()

    def _sync_request(self, *args, **kwargs):  # type: ignore[override]
        with self._lock:
            self.requests += 1
        return super()._sync_request(*args, **kwargs)


def _status_code(text: str | None) -> int | None:
    if not text:
        return None
    parts = text.split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


class CalDAVAccount:
    def __init__(self, url: str, username: str, password: str, *, timeout_s: float = 20.0, auth_type: str | None = "basic") -> None:
        self.url = url
        # Basic auth up front (iCloud, Fastmail, Nextcloud, Radicale all take it over TLS):
        # it saves the 401 round trip of negotiating it on every run.
        self.client = _CountingClient(
            url=url, username=username, password=password, timeout=int(timeout_s), auth_type=auth_type,
            enable_rfc6764=False, require_tls=False,
        )

    @property
    def requests(self) -> int:
        return self.client.requests

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # noqa: BLE001, S110 (closing a session must never fail a run)
            pass

    # ------------------------------------------------------------ discovery
    def discover(self) -> tuple[str, list[RemoteCalendar]]:
        """(principal URL, calendars) by the standard current-user-principal /
        calendar-home-set lookup (RFC 5397, RFC 4791 section 6.2.1)."""
        try:
            principal = self.client.principal()
            home = principal.calendar_home_set
            calendars = home.calendars()
        except dav_error.AuthorizationError as exc:
            raise CalDAVAuthError("the CalDAV server rejected the username or password") from exc
        except (dav_error.DAVError, dav_error.NotFoundError) as exc:
            raise NotCalDAV(f"no CalDAV principal / calendar-home-set at this URL ({type(exc).__name__})") from exc
        except (OSError, ValueError, KeyError, AttributeError, TypeError, etree.LxmlError) as exc:
            raise NotCalDAV(f"the URL does not answer as a CalDAV server ({type(exc).__name__})") from exc
        out = []
        for cal in calendars:
            try:
                name = cal.get_display_name()
            except Exception:  # noqa: BLE001 (the name is cosmetic)
                name = None
            out.append(RemoteCalendar(url=str(cal.url), name=name))
        return str(principal.url), out

    # ------------------------------------------------------------ requests
    def _request(self, url: str, method: str, body: str = "", headers: dict | None = None):
        try:
            return self.client.request(url, method, body, headers or {})
        except dav_error.AuthorizationError as exc:
            if any("valid-sync-token" in p for p in getattr(exc, "preconditions", []) or []):
                raise InvalidSyncToken("sync token rejected") from exc
            if "valid-sync-token" in str(exc):
                raise InvalidSyncToken("sync token rejected") from exc
            raise CalDAVAuthError("the CalDAV server rejected the username or password") from exc

    def probe(self, cal_url: str) -> tuple[str | None, str | None]:
        """(getctag, sync-token) of a calendar: one PROPFIND, Depth 0."""
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<d:propfind xmlns:d="DAV:" xmlns:cs="http://calendarserver.org/ns/">'
            "<d:prop><cs:getctag/><d:sync-token/></d:prop></d:propfind>"
        )
        r = self._request(cal_url, "PROPFIND", body, {"Depth": "0", "Content-Type": "application/xml; charset=utf-8"})
        if r.status not in (200, 207) or r.tree is None:
            raise CalDAVError(f"PROPFIND answered {r.status}")
        ctag = r.tree.findtext(".//cs:getctag", namespaces=NS)
        token = r.tree.findtext(".//d:sync-token", namespaces=NS)
        return (ctag.strip() if ctag else None), (token.strip() if token else None)

    def changes(self, cal_url: str, token: str | None) -> tuple[str | None, list[Change], list[str]]:
        """RFC 6578 sync-collection: (new token, changed members, removed hrefs).
        With no token: every member (the initial enumeration)."""
        changed: dict[str, Change] = {}
        removed: set[str] = set()
        current = token or ""
        for _ in range(1000):  # truncated replies (507) are followed with the new token
            body = (
                '<?xml version="1.0" encoding="utf-8"?>'
                '<d:sync-collection xmlns:d="DAV:">'
                f"<d:sync-token>{escape(current)}</d:sync-token>"
                "<d:sync-level>1</d:sync-level>"
                "<d:prop><d:getetag/></d:prop></d:sync-collection>"
            )
            r = self._request(cal_url, "REPORT", body, {"Depth": "0", "Content-Type": "application/xml; charset=utf-8"})
            if r.status in (403, 409, 412) or (r.status == 400 and token):
                raise InvalidSyncToken(f"sync-collection answered {r.status}")
            if r.status != 207 or r.tree is None:
                raise CalDAVError(f"sync-collection answered {r.status}")
            truncated = False
            base_path = urlparse(cal_url).path.rstrip("/")
            for resp in r.tree.findall("d:response", NS):
                href = unquote(resp.findtext("d:href", namespaces=NS) or "").strip()
                status = _status_code(resp.findtext("d:status", namespaces=NS))
                if status == 507 and urlparse(href).path.rstrip("/") == base_path:
                    truncated = True
                    continue
                if href.rstrip("/") == base_path:
                    continue
                if status == 404:
                    removed.add(href)
                    changed.pop(href, None)
                    continue
                etag = resp.findtext(".//d:getetag", namespaces=NS)
                changed[href] = Change(href=href, etag=etag.strip() if etag else None)
                removed.discard(href)
            new_token = (r.tree.findtext("d:sync-token", namespaces=NS) or "").strip() or None
            if not truncated or not new_token or new_token == current:
                return new_token, list(changed.values()), sorted(removed)
            current = new_token
        raise CalDAVError("sync-collection kept truncating")

    def fetch(self, cal_url: str, hrefs: list[str]) -> list[Fetched]:
        """calendar-multiget REPORT (RFC 4791 section 7.9) for a batch of hrefs."""
        if not hrefs:
            return []
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<c:calendar-multiget xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
            "<d:prop><d:getetag/><c:calendar-data/></d:prop>"
            + "".join(f"<d:href>{escape(quote(h, safe='/@:%+~'))}</d:href>" for h in hrefs)
            + "</c:calendar-multiget>"
        )
        r = self._request(cal_url, "REPORT", body, {"Depth": "1", "Content-Type": "application/xml; charset=utf-8"})
        if r.status != 207 or r.tree is None:
            raise CalDAVError(f"calendar-multiget answered {r.status}")
        out = []
        for resp in r.tree.findall("d:response", NS):
            href = unquote(resp.findtext("d:href", namespaces=NS) or "").strip()
            etag = resp.findtext(".//d:getetag", namespaces=NS)
            data = resp.findtext(".//c:calendar-data", namespaces=NS)
            out.append(Fetched(href=href, etag=etag.strip() if etag else None, data=data))
        return out

    def object_url(self, cal_url: str, uid: str) -> str:
        name = quote(uid.replace("/", "_"), safe="@-_.") + ".ics"
        return urljoin(cal_url if cal_url.endswith("/") else cal_url + "/", name)

    def href_url(self, href: str) -> str:
        return urljoin(self.url, quote(href, safe="/@:%+~"))

    def put(self, url: str, ics: str, *, etag: str | None = None, create: bool = False) -> str | None:
        """PUT a calendar object; returns its new ETag (None if the server sent none)."""
        headers = {"Content-Type": "text/calendar; charset=utf-8"}
        if etag:
            headers["If-Match"] = etag
        elif create:
            headers["If-None-Match"] = "*"
        r = self._request(url, "PUT", ics, headers)
        if r.status == 412:
            raise PreconditionFailed("the event changed on the server")
        if r.status not in (200, 201, 204):
            raise CalDAVError(f"PUT answered {r.status}")
        return r.headers.get("ETag")

    def get(self, url: str) -> tuple[str | None, str | None]:
        """(etag, iCalendar text) of one object, (None, None) when it is gone."""
        r = self._request(url, "GET")
        if r.status == 404:
            return None, None
        if r.status != 200:
            raise CalDAVError(f"GET answered {r.status}")
        raw = r._raw if isinstance(r._raw, str) else (r._raw or b"").decode("utf-8", "replace")
        return r.headers.get("ETag"), raw

    def delete(self, url: str, *, etag: str | None = None) -> None:
        headers = {"If-Match": etag} if etag else {}
        r = self._request(url, "DELETE", "", headers)
        if r.status == 412:
            raise PreconditionFailed("the event changed on the server")
        if r.status not in (200, 204, 404):
            raise CalDAVError(f"DELETE answered {r.status}")
