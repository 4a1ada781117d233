"""The sync worker: ``python -m eindr_calendar.worker``.

- claims due connections (``next_sync_at <= now``, leased with ``FOR UPDATE SKIP LOCKED``,
  so several workers share the load) and runs each sync in its own task with a timeout:
  a slow or failing connection never blocks the others; failures back off exponentially;
- wakes at once when the webhook or a reminder change asks for a sync (a Redis list);
- renews Google push channels before they expire (the run re-creates them);
- consumes the reminders stream (reminder.* -> outbound queue) and the users stream
  (user.deleted -> stop channels, erase the user's connections).
Metrics and /healthz on ``EINDR_CALENDAR_WORKER_METRICS_PORT`` (default 9107).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import redis.asyncio as aioredis
from eindr_common import events
from eindr_common.db import create_pool
from eindr_common.migrations import upgrade
from eindr_common.observability import configure_logging, configure_sentry
from eindr_common.redis_client import create_redis
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest

from . import repository as repo
from . import service
from .clients import RemindersClient
from .crypto import Crypto
from .settings import CalendarSettings

log = logging.getLogger("eindr.calendar.worker")
IN_FLIGHT = Gauge("calendar_worker_runs_in_flight", "Sync runs in progress")
CONSUMER_GROUP = "calendar"


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/metrics":
            body, ctype = generate_latest(), CONTENT_TYPE_LATEST
        elif self.path == "/healthz":
            body, ctype = b'{"status":"ok"}', "application/json"
        else:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("content-type", ctype)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


async def sync_loop(deps: service.Deps, stop: asyncio.Event) -> None:
    s = deps.settings
    running: set[asyncio.Task] = set()
    wake_redis = deps.redis
    while not stop.is_set():
        free = s.calendar_worker_concurrency - len(running)
        if free > 0:
            try:
                async with deps.pool.acquire() as conn:
                    ids = await repo.claim_due(conn, free, s.calendar_sync_timeout_s + 60)
            except Exception:
                log.exception("could not claim due connections")
                ids = []
            for connection_id in ids:
                task = asyncio.create_task(_guarded_run(deps, connection_id), name=f"sync-{connection_id}")
                running.add(task)
                task.add_done_callback(running.discard)
        try:
            await wake_redis.blpop([service.WAKE_KEY], timeout=s.calendar_worker_tick_s)
        except (aioredis.ConnectionError, aioredis.TimeoutError):
            await asyncio.sleep(s.calendar_worker_tick_s)
        except Exception:  # noqa: BLE001 (never let the wake-up wait end the loop)
            await asyncio.sleep(s.calendar_worker_tick_s)
    for task in running:
        task.cancel()
    with contextlib.suppress(Exception):
        await asyncio.gather(*running, return_exceptions=True)


async def _guarded_run(deps: service.Deps, connection_id: uuid.UUID) -> None:
    IN_FLIGHT.inc()
    try:
        await asyncio.wait_for(service.run_sync(deps, connection_id, trigger="worker"), deps.settings.calendar_sync_timeout_s + 30)
    except Exception:
        log.exception("sync run crashed", extra={"fields": {"connection": str(connection_id)}})
        with contextlib.suppress(Exception):
            async with deps.pool.acquire() as conn:
                await conn.execute(
                    "UPDATE calendar.connections SET lease_until = NULL, failures = failures + 1, "
                    "next_sync_at = now() + make_interval(secs => $2) WHERE id = $1",
                    connection_id, deps.settings.calendar_backoff_base_s,
                )
    finally:
        IN_FLIGHT.dec()


async def channel_loop(deps: service.Deps, stop: asyncio.Event, every_s: float = 60.0) -> None:
    """Connections with a Google channel missing or expiring soon get a run (which renews it)."""
    while not stop.is_set():
        try:
            horizon = service.utcnow() + timedelta(seconds=deps.settings.calendar_channel_renew_before_s)
            if deps.settings.calendar_webhook_url:
                async with deps.pool.acquire() as conn:
                    for cal in await repo.calendars_needing_channel(conn, horizon):
                        await repo.request_sync(conn, cal["connection_id"])
        except Exception:
            log.exception("channel renewal pass failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)


async def main() -> None:
    settings = CalendarSettings()
    configure_logging(settings.log_level)
    configure_sentry(settings.sentry_dsn, settings.env, "calendar-worker")
    if settings.migrate_on_start:
        await asyncio.to_thread(upgrade, settings.migrations_path, settings.database_url)
    server = ThreadingHTTPServer(("0.0.0.0", settings.calendar_worker_metrics_port), _Health)
    Thread(target=server.serve_forever, daemon=True).start()
    # CalDAV and Google clients are synchronous and run in threads: give them enough that
    # concurrent runs (and their slow servers) never starve each other or the consumers.
    from concurrent.futures import ThreadPoolExecutor

    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=settings.calendar_worker_concurrency * 4 + 8, thread_name_prefix="calendar-io"))
    pool = await create_pool(settings.database_url, min_size=1,
                             max_size=settings.calendar_worker_concurrency * (settings.calendar_apply_concurrency + 1) + 8,
                             application_name="calendar-worker")
    redis = create_redis(settings.redis_url)
    blocking_redis = aioredis.Redis.from_url(settings.redis_url, decode_responses=True, socket_timeout=settings.calendar_worker_tick_s + 10)
    deps = service.Deps(pool=pool, redis=redis, settings=settings, crypto=Crypto(settings.encryption_keys),
                        reminders=RemindersClient(settings.reminders_url, settings.internal_token_secret))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    consumer = settings.calendar_consumer_name or socket.gethostname()
    sync_deps = service.Deps(pool=pool, redis=blocking_redis, settings=settings, crypto=deps.crypto, reminders=deps.reminders)
    tasks = [
        asyncio.create_task(sync_loop(sync_deps, stop)),
        asyncio.create_task(channel_loop(deps, stop)),
        asyncio.create_task(events.consume(redis, [events.stream_name("reminders")], CONSUMER_GROUP, consumer,
                                           lambda t, p: service.on_reminder_event(deps, t, p), stop=stop)),
        asyncio.create_task(events.consume(redis, [events.stream_name("users")], CONSUMER_GROUP + "-users", consumer,
                                           lambda t, p: service.on_user_event(deps, t, p), stop=stop)),
    ]
    log.info("calendar worker started", extra={"fields": {"consumer": consumer}})
    await stop.wait()
    await asyncio.gather(*tasks, return_exceptions=True)
    server.shutdown()
    await deps.reminders.aclose()
    await redis.aclose()
    await blocking_redis.aclose()
    await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
