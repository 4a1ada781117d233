"""A local stand-in for Google's OAuth 2.0 endpoints and the Calendar API v3 methods Eindr
calls, speaking their documented wire format (the discovery document's paths and
parameters; syncToken + 410 fullSyncRequired; ETag/If-Match 412; events.watch channels
with push notifications carrying the X-Goog-* header set). The service reaches it through
exactly the production code (google-api-python-client, google-auth, httpx).

Test-only control routes live under ``/_test``.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import itertools
import secrets
import time
import uuid
from datetime import UTC, datetime
from email.utils import formatdate
from urllib.parse import urlencode

import httpx
from fastapi import FastAPI, Form, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

PRIMARY = "owner@example.com"


def _now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(code: int, message: str, reason: str = "invalid", status: str | None = None) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "errors": [{"domain": "global", "reason": reason, "message": message}]}}
    if status:
        body["error"]["status"] = status
    return JSONResponse(body, status_code=code)


class State:
    def __init__(self) -> None:
        self.codes: dict[str, dict] = {}
        self.refresh_tokens: dict[str, bool] = {}  # token -> valid
        self.access_tokens: dict[str, float] = {}  # token -> expiry (epoch)
        self.seq = itertools.count(1)
        # one account per login_hint: its primary calendar is "<hint>@example.com"
        self.calendars: dict[str, dict] = {}
        self.owner: dict[str, str] = {}  # calendar id -> account
        self.events: dict[str, dict[str, dict]] = {}
        self.min_sync: dict[str, int] = {}
        self.token_account: dict[str, str] = {}
        self.channels: dict[str, dict] = {}
        self.stopped: list[dict] = []
        self.log: list[dict] = []
        self.notifications: list[dict] = []

    def account(self, hint: str) -> str:
        primary = f"{hint}@example.com"
        if primary not in self.calendars:
            for cal in ({"id": primary, "summary": hint, "primary": True, "accessRole": "owner", "timeZone": "Europe/Amsterdam"},
                        {"id": f"work.{hint}@example.com", "summary": "Work", "accessRole": "owner", "timeZone": "UTC"},
                        {"id": f"holidays.{hint}@example.com", "summary": "Holidays", "accessRole": "reader", "timeZone": "UTC"}):
                self.calendars[cal["id"]] = cal
                self.owner[cal["id"]] = hint
                self.events[cal["id"]] = {}
                self.min_sync[cal["id"]] = 0
        return hint


def create_app() -> FastAPI:
    app = FastAPI()
    st = State()
    app.state.st = st

    @app.middleware("http")
    async def record(request: Request, call_next):
        if not request.url.path.startswith("/_test"):
            st.log.append({"method": request.method, "path": request.url.path, "query": dict(request.query_params),
                           "if_match": request.headers.get("if-match")})
        return await call_next(request)

    # ------------------------------------------------------------ OAuth 2.0
    @app.get("/o/oauth2/v2/auth")
    async def authorize(client_id: str, redirect_uri: str, response_type: str, state: str, code_challenge: str,
                        code_challenge_method: str, scope: str = "", access_type: str = "online", login_hint: str = "owner"):
        if response_type != "code" or code_challenge_method != "S256" or not code_challenge:
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        code = "4/" + secrets.token_urlsafe(24)
        st.codes[code] = {"client_id": client_id, "redirect_uri": redirect_uri, "challenge": code_challenge,
                          "offline": access_type == "offline", "scope": scope,
                          "account": st.account(login_hint)}
        return RedirectResponse(redirect_uri + "?" + urlencode({"code": code, "state": state, "scope": scope}), status_code=302)

    @app.post("/token")
    async def token(grant_type: str = Form(...), code: str | None = Form(None), code_verifier: str | None = Form(None),
                    redirect_uri: str | None = Form(None), client_id: str | None = Form(None),
                    client_secret: str | None = Form(None), refresh_token: str | None = Form(None)):
        def bad(desc: str, err: str = "invalid_grant"):
            return JSONResponse({"error": err, "error_description": desc}, status_code=400)

        if grant_type == "authorization_code":
            grant = st.codes.pop(code or "", None)
            if grant is None:
                return bad("Malformed auth code.")
            if grant["redirect_uri"] != redirect_uri or grant["client_id"] != client_id:
                return bad("redirect_uri or client_id mismatch")
            digest = base64.urlsafe_b64encode(hashlib.sha256((code_verifier or "").encode()).digest()).decode().rstrip("=")
            if digest != grant["challenge"]:
                return bad("Invalid code verifier.")
            access = "ya29." + secrets.token_urlsafe(24)
            st.access_tokens[access] = time.time() + 3599
            st.token_account[access] = grant["account"]
            body = {"access_token": access, "expires_in": 3599, "token_type": "Bearer", "scope": grant["scope"]}
            if grant["offline"]:
                rt = "1//" + secrets.token_urlsafe(32)
                st.refresh_tokens[rt] = True
                st.token_account[rt] = grant["account"]
                body["refresh_token"] = rt
            return body
        if grant_type == "refresh_token":
            if not st.refresh_tokens.get(refresh_token or ""):
                return bad("Token has been expired or revoked.")
            access = "ya29." + secrets.token_urlsafe(24)
            st.access_tokens[access] = time.time() + 3599
            st.token_account[access] = st.token_account[refresh_token]
            return {"access_token": access, "expires_in": 3599, "token_type": "Bearer", "scope": "https://www.googleapis.com/auth/calendar"}
        return bad("unsupported grant_type", "unsupported_grant_type")

    def authed(request: Request, cal: str | None = None) -> bool:
        header = request.headers.get("authorization", "")
        tok = header[7:] if header.lower().startswith("bearer ") else ""
        if st.access_tokens.get(tok, 0) <= time.time():
            return False
        request.state.account = st.token_account.get(tok)
        return cal is None or st.owner.get(cal) == request.state.account

    def unauth() -> JSONResponse:
        return _error(401, "Request had invalid authentication credentials.", "authError", "UNAUTHENTICATED")

    # ------------------------------------------------------------ Calendar API v3
    @app.get("/calendar/v3/users/me/calendarList")
    async def calendar_list(request: Request):
        if not authed(request):
            return unauth()
        mine = [c for c in st.calendars.values() if st.owner[c["id"]] == request.state.account]
        return {"kind": "calendar#calendarList", "etag": '"p1"', "items": [dict(c, kind="calendar#calendarListEntry") for c in mine]}

    def _bump(cal: str, ev: dict) -> dict:
        n = next(st.seq)
        ev["_seq"] = n
        ev["etag"] = f'"{n}{secrets.token_hex(4)}"'
        ev["updated"] = _now_rfc3339()
        return ev

    def public(ev: dict) -> dict:
        return {k: v for k, v in ev.items() if not k.startswith("_")}

    async def notify(cal: str) -> None:
        for ch in list(st.channels.values()):
            if ch["calendar"] != cal:
                continue
            ch["number"] += 1
            headers = {
                "X-Goog-Channel-ID": ch["id"], "X-Goog-Channel-Token": ch["token"] or "",
                "X-Goog-Channel-Expiration": formatdate(ch["expiration"] / 1000, usegmt=True),
                "X-Goog-Resource-ID": ch["resourceId"], "X-Goog-Resource-URI": ch["resourceUri"],
                "X-Goog-Resource-State": "exists" if ch["number"] > 1 else "sync", "X-Goog-Message-Number": str(ch["number"]),
            }
            try:
                async with httpx.AsyncClient(timeout=5) as client:
                    r = await client.post(ch["address"], headers=headers)
                st.notifications.append({"channel": ch["id"], "state": headers["X-Goog-Resource-State"], "status": r.status_code})
            except httpx.HTTPError as exc:
                st.notifications.append({"channel": ch["id"], "error": type(exc).__name__})

    def changed(cal: str) -> None:
        asyncio.get_running_loop().create_task(notify(cal))

    def insert(cal: str, body: dict) -> dict:
        eid = body.get("id") or uuid.uuid4().hex
        ev = {k: v for k, v in body.items() if not k.startswith("_")}
        ev.update(kind="calendar#event", id=eid, status=body.get("status", "confirmed"), created=_now_rfc3339(),
                  iCalUID=f"{eid}@google.com", htmlLink=f"https://calendar.example/event?eid={eid}",
                  organizer={"email": cal, "self": True}, creator={"email": cal, "self": True})
        st.events[cal][eid] = _bump(cal, ev)
        changed(cal)
        return ev

    def patch(cal: str, eid: str, body: dict) -> dict:
        ev = st.events[cal][eid]
        for k, v in body.items():
            if k not in ("id", "etag", "updated", "kind"):
                ev[k] = copy.deepcopy(v)
        _bump(cal, ev)
        changed(cal)
        return ev

    def delete(cal: str, eid: str, *, notify_channels: bool = True) -> None:
        ev = st.events[cal][eid]
        ev["status"] = "cancelled"
        _bump(cal, ev)
        if notify_channels:
            changed(cal)

    @app.get("/calendar/v3/calendars/{cal}/events")
    async def list_events(cal: str, request: Request, syncToken: str | None = None, pageToken: str | None = None,
                          maxResults: int = 250, showDeleted: bool = False):
        if cal not in st.events:
            return _error(404, "Not Found", "notFound")
        if not authed(request, cal):
            return unauth()
        events = sorted(st.events[cal].values(), key=lambda e: e["_seq"])
        if syncToken:
            try:
                since = int(syncToken.split("-", 1)[1])
            except (IndexError, ValueError):
                return _error(400, "Invalid sync token value.", "invalid")
            if since < st.min_sync[cal]:
                return _error(410, "Sync token is no longer valid, a full sync is required.", "fullSyncRequired")
            events = [e for e in events if e["_seq"] > since]
        elif not showDeleted:
            events = [e for e in events if e["status"] != "cancelled"]
        offset = int(pageToken or 0)
        page = events[offset: offset + min(maxResults, 2500)]
        body = {"kind": "calendar#events", "etag": '"x"', "summary": cal, "timeZone": st.calendars[cal]["timeZone"],
                "updated": _now_rfc3339(), "accessRole": "owner", "defaultReminders": [{"method": "popup", "minutes": 10}],
                "items": [public(e) for e in page]}
        if offset + len(page) < len(events):
            body["nextPageToken"] = str(offset + len(page))
        else:
            body["nextSyncToken"] = f"st-{max([e['_seq'] for e in st.events[cal].values()] or [0])}"
        return body

    @app.post("/calendar/v3/calendars/{cal}/events/watch")
    async def watch(cal: str, request: Request):
        if not authed(request, cal):
            return unauth()
        body = await request.json()
        if body.get("type") not in ("web_hook", "webhook") or not body.get("address") or not body.get("id"):
            return _error(400, "Invalid channel", "invalid")
        if body["id"] in st.channels:
            return _error(400, f"Channel id {body['id']} not unique", "channelIdNotUnique")
        ttl = int((body.get("params") or {}).get("ttl") or 604800)
        ch = {"id": body["id"], "calendar": cal, "address": body["address"], "token": body.get("token"),
              "resourceId": secrets.token_urlsafe(12), "resourceUri": f"{request.base_url}calendar/v3/calendars/{cal}/events?alt=json",
              "expiration": int((time.time() + min(ttl, 604800)) * 1000), "number": 0}
        st.channels[ch["id"]] = ch
        asyncio.get_running_loop().create_task(notify(cal))  # the "sync" handshake message
        return {"kind": "api#channel", "id": ch["id"], "resourceId": ch["resourceId"], "resourceUri": ch["resourceUri"],
                "token": ch["token"], "expiration": str(ch["expiration"])}

    @app.post("/calendar/v3/calendars/{cal}/events")
    async def insert_event(cal: str, request: Request):
        if not authed(request, cal):
            return unauth()
        return insert(cal, await request.json())

    def _precondition(request: Request, ev: dict) -> JSONResponse | None:
        want = request.headers.get("if-match")
        if want and want != ev["etag"]:
            return _error(412, "Precondition Failed", "conditionNotMet")
        return None

    @app.get("/calendar/v3/calendars/{cal}/events/{eid}")
    async def get_event(cal: str, eid: str, request: Request):
        if not authed(request, cal):
            return unauth()
        ev = st.events.get(cal, {}).get(eid)
        if ev is None:
            return _error(404, "Not Found", "notFound")
        return public(ev)

    @app.patch("/calendar/v3/calendars/{cal}/events/{eid}")
    async def patch_event(cal: str, eid: str, request: Request):
        if not authed(request, cal):
            return unauth()
        ev = st.events.get(cal, {}).get(eid)
        if ev is None or ev["status"] == "cancelled":
            return _error(404, "Not Found", "notFound")
        bad = _precondition(request, ev)
        return bad or public(patch(cal, eid, await request.json()))

    @app.delete("/calendar/v3/calendars/{cal}/events/{eid}")
    async def delete_event(cal: str, eid: str, request: Request):
        if not authed(request, cal):
            return unauth()
        ev = st.events.get(cal, {}).get(eid)
        if ev is None or ev["status"] == "cancelled":
            return _error(410, "Resource has been deleted", "deleted")
        bad = _precondition(request, ev)
        if bad:
            return bad
        delete(cal, eid)
        return Response(status_code=204)

    @app.post("/calendar/v3/channels/stop")
    async def stop(request: Request):
        if not authed(request):
            return unauth()
        body = await request.json()
        ch = st.channels.get(body.get("id"))
        if ch is None or ch["resourceId"] != body.get("resourceId"):
            return _error(404, "Channel not found", "notFound")
        st.stopped.append(st.channels.pop(ch["id"]))
        return Response(status_code=204)

    # ------------------------------------------------------------ test control (the "user" in Google's UI)
    @app.post("/_test/calendars/{cal}/events")
    async def t_insert(cal: str, request: Request):
        return insert(cal, await request.json())

    @app.patch("/_test/calendars/{cal}/events/{eid}")
    async def t_patch(cal: str, eid: str, request: Request):
        return public(patch(cal, eid, await request.json()))

    @app.delete("/_test/calendars/{cal}/events/{eid}")
    async def t_delete(cal: str, eid: str, notify: bool = True):
        """notify=false: a change whose push notification is late (Google does not promise prompt delivery)."""
        delete(cal, eid, notify_channels=notify)
        return Response(status_code=204)

    @app.get("/_test/calendars/{cal}/events")
    async def t_events(cal: str):
        return [public(e) for e in st.events[cal].values()]

    @app.post("/_test/calendars/{cal}/invalidate-sync-tokens")
    async def t_invalidate(cal: str):
        st.min_sync[cal] = next(st.seq)
        return {"ok": True}

    @app.post("/_test/accounts/{hint}/revoke")
    async def t_revoke(hint: str):
        for k in list(st.refresh_tokens):
            if st.token_account.get(k) == hint:
                st.refresh_tokens[k] = False
        for k in list(st.access_tokens):
            if st.token_account.get(k) == hint:
                del st.access_tokens[k]
        return {"ok": True}

    @app.post("/_test/accounts/{hint}/calendars")
    async def t_add_calendar(hint: str, request: Request):
        """A calendar the user creates in Google's UI after connecting."""
        body = await request.json()
        cal = {"id": body["id"], "summary": body.get("summary", body["id"]), "accessRole": body.get("accessRole", "owner"),
               "timeZone": body.get("timeZone", "UTC")}
        st.calendars[cal["id"]] = cal
        st.owner[cal["id"]] = hint
        st.events[cal["id"]] = {}
        st.min_sync[cal["id"]] = 0
        return cal

    @app.delete("/_test/calendars/{cal}")
    async def t_delete_calendar(cal: str):
        for table in (st.calendars, st.owner, st.events, st.min_sync):
            table.pop(cal, None)
        return Response(status_code=204)

    @app.get("/_test/state")
    async def t_state():
        return {"channels": list(st.channels.values()), "stopped": st.stopped, "log": st.log[-500:],
                "notifications": st.notifications, "refresh_tokens": list(st.refresh_tokens)}

    return app
