"""Notification delivery: the SSE fan-out (durable: the stream reads the deliveries table by
the user's gap-free sequence; Redis pub/sub only wakes it up) and FCM push.

FCM: firebase-admin builds and encodes the message (``messaging.Message`` and its FCM HTTP
v1 encoder), but its send path is hard-wired to ``https://fcm.googleapis.com`` (the
``_MessagingService.FCM_URL`` class constant, no option or emulator variable redirects it).
So the HTTP call is ours: the FCM HTTP v1 ``messages:send`` request with a Google OAuth2
access token from the service-account credentials (google-auth), against a configurable
base URL (``EINDR_FCM_BASE_URL``). The tests point it at a local server that speaks the
same wire format, token endpoint included (the service account's ``token_uri``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict
from typing import Any

import httpx
import redis.asyncio as aioredis

log = logging.getLogger("eindr.reminders.notifications")

WAKE_CHANNEL = "eindr:reminders:deliveries"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


async def wake(redis: aioredis.Redis, uid: str) -> None:
    try:
        await redis.publish(WAKE_CHANNEL, uid)
    except (aioredis.ConnectionError, aioredis.TimeoutError):
        # The SSE streams also re-read the table on a timer: a lost wake-up only delays.
        log.warning("could not publish an SSE wake-up")


class DeliveryHub:
    """One Redis subscription per API process; wakes the SSE streams of the user concerned."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="sse-hub")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001,S110
                pass

    def register(self, uid: str) -> asyncio.Event:
        event = asyncio.Event()
        self._waiters[uid].add(event)
        return event

    def unregister(self, uid: str, event: asyncio.Event) -> None:
        waiters = self._waiters.get(uid)
        if waiters is not None:
            waiters.discard(event)
            if not waiters:
                self._waiters.pop(uid, None)

    async def _listen(self) -> None:
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(WAKE_CHANNEL)
                # Anything published while we were (re)subscribing is covered by a wake-all.
                for events in list(self._waiters.values()):
                    for e in events:
                        e.set()
                while True:
                    message = await pubsub.get_message(timeout=5.0)
                    if message is None or message.get("type") != "message":
                        continue
                    for e in list(self._waiters.get(message["data"], ())):
                        e.set()
            except asyncio.CancelledError:
                await pubsub.aclose()
                raise
            except Exception:
                log.warning("SSE hub lost its Redis subscription; retrying", exc_info=True)
                await asyncio.sleep(1)
            finally:
                try:
                    await pubsub.aclose()
                except Exception:  # noqa: BLE001,S110
                    pass


# ---------------------------------------------------------------- FCM


class FcmSender:
    """FCM HTTP v1 sender. ``send`` answers one of: sent, unregistered, invalid_token, failed."""

    def __init__(
        self,
        credentials_file: str,
        *,
        project_id: str | None = None,
        base_url: str = "https://fcm.googleapis.com",
        timeout_s: float = 5.0,
    ) -> None:
        from google.oauth2 import service_account

        with open(credentials_file) as fh:
            info = json.load(fh)
        self._credentials = service_account.Credentials.from_service_account_info(info, scopes=[FCM_SCOPE])
        self.project_id = project_id or info.get("project_id")
        if not self.project_id:
            raise ValueError("FCM needs a project id: EINDR_FCM_PROJECT_ID or project_id in the credentials file")
        self._url = f"{base_url.rstrip('/')}/v1/projects/{self.project_id}/messages:send"
        self._http = httpx.AsyncClient(timeout=timeout_s)
        self._token_lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _access_token(self) -> str:
        async with self._token_lock:
            if not self._credentials.valid:
                import google.auth.transport.requests

                await asyncio.to_thread(self._credentials.refresh, google.auth.transport.requests.Request())
            return self._credentials.token

    @staticmethod
    def encode(token: str, title: str, body: str, data: dict[str, str], urgent: bool) -> dict[str, Any]:
        """The FCM v1 ``message`` JSON, built and encoded by firebase-admin."""
        from firebase_admin import messaging

        message = messaging.Message(
            token=token,
            notification=messaging.Notification(title=title, body=body),
            data=data,
            android=messaging.AndroidConfig(priority="high" if urgent else "normal"),
            apns=messaging.APNSConfig(headers={"apns-priority": "10" if urgent else "5"}),
        )
        return messaging._MessagingService.encode_message(message)

    async def send(self, token: str, title: str, body: str, data: dict[str, str], *, urgent: bool = False) -> str:
        payload = {"message": self.encode(token, title, body, data, urgent)}
        try:
            access = await self._access_token()
            response = await self._http.post(
                self._url, json=payload, headers={"authorization": f"Bearer {access}", "x-goog-api-format-version": "2"}
            )
        except (httpx.HTTPError, OSError, Exception) as exc:  # google-auth raises its own TransportError  # noqa: BLE001
            log.warning("FCM send failed: %s: %s", type(exc).__name__, str(exc)[:300])
            return "failed"
        if response.status_code == 200:
            return "sent"
        code = _fcm_error_code(response)
        if code == "UNREGISTERED" or (response.status_code == 404 and code is None):
            return "unregistered"
        if code == "INVALID_ARGUMENT" and "token" in response.text.lower():
            return "invalid_token"
        log.warning("FCM answered %s %s", response.status_code, code)
        return "failed"


def _fcm_error_code(response: httpx.Response) -> str | None:
    try:
        error = response.json().get("error") or {}
    except ValueError:
        return None
    for detail in error.get("details") or []:
        if detail.get("@type") == "type.googleapis.com/google.firebase.fcm.v1.FcmError":
            return detail.get("errorCode")
    return error.get("status")


_last_warn = [0.0]


def warn_rarely(message: str) -> None:
    if time.monotonic() - _last_warn[0] > 60:
        _last_warn[0] = time.monotonic()
        log.warning(message)
