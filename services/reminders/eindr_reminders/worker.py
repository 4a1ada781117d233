"""The scheduler worker: ``python -m eindr_reminders.worker`` (metrics on :9103).

The database row is the source of truth; a worker only ever holds a short look-ahead
window in memory:

1. every ``EINDR_REMINDERS_POLL_S`` it renews the leases of what it holds and claims the
   reminders whose next fire falls within ``EINDR_REMINDERS_WINDOW_S`` and that no live
   worker holds (``FOR UPDATE SKIP LOCKED`` + ``lease_until``);
2. each claimed fire becomes an APScheduler 3 *date* job in this process's in-memory job
   store (never a shared persistent store: APScheduler's FAQ warns of duplicate and missed
   runs), which runs at the exact second;
3. the job runs ``service.fire``: in one transaction, with the row locked, the delivery row
   (unique per reminder/occurrence/offset) and its ``reminder.fired`` outbox event are
   written and the reminder advanced. A version or time mismatch (edited, cancelled, fired
   by another worker) makes it a no-op, so each occurrence is delivered exactly once with
   any number of workers; a worker killed with SIGKILL loses nothing: its leases expire and
   another worker claims the rows, and events it committed but had not yet published are
   published by the next relay pass of any worker (the outbox relay, below).

The same process consumes ``user.timezone_changed`` / ``user.deleted`` events, runs bulk
jobs from the Redis queue, and retries push notifications left pending by a crash.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
import uuid
from datetime import UTC, datetime

import asyncpg
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from eindr_common import events
from eindr_common.db import create_pool
from eindr_common.identity import Principal
from eindr_common.observability import configure_logging, configure_sentry
from eindr_common.redis_client import create_redis
from eindr_common.settings import CommonSettings
from prometheus_client import Counter, Gauge, Histogram, start_http_server

from . import outbox, service
from . import repository as repo
from .api import JOB_QUEUE
from .app import migrations_dir
from .clients import AuthClient, UsersClient
from .notifications import FcmSender, wake
from .settings import RemindersSettings

log = logging.getLogger("eindr.reminders.worker")

FIRED = Counter("eindr_reminders_fires_total", "Fire attempts by outcome", ["result"])
LATENESS = Histogram(
    "eindr_reminders_fire_lateness_seconds",
    "Delivery commit time minus scheduled fire time",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
CLAIMED = Counter("eindr_reminders_claimed_total", "Reminders claimed into this worker's window")
HELD = Gauge("eindr_reminders_window_jobs", "Fires scheduled in this worker's in-memory window")
PUSH = Counter("eindr_reminders_push_total", "Push notifications by result", ["result"])
RELAY_INTERVAL_S = 2.0  # background outbox pass: events a crash or a Redis outage left behind


class Worker:
    def __init__(self, common: CommonSettings, settings: RemindersSettings) -> None:
        self.common = common
        self.settings = settings
        self.id = settings.reminders_worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.stop = asyncio.Event()
        self.pending: dict[uuid.UUID, int] = {}  # reminder id -> version scheduled in APScheduler
        self.fcm: FcmSender | None = None
        self._warmups: set[asyncio.Task] = set()
        self._relay_nudge = asyncio.Event()

    # ------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        s, c = self.settings, self.common
        if c.migrate_on_start:
            from eindr_common.migrations import upgrade

            await asyncio.to_thread(upgrade, migrations_dir(), c.database_url)
        self.pool = await create_pool(
            c.database_url, min_size=2, max_size=s.reminders_db_pool_size, application_name="reminders-worker"
        )
        self.redis = create_redis(c.redis_url)
        self.users = UsersClient(s.users_url, c.internal_token_secret, cache_s=s.reminders_prefs_cache_s)
        self.auth = AuthClient(s.auth_url, c.internal_token_secret)
        if s.fcm_credentials_file:
            self.fcm = FcmSender(
                s.fcm_credentials_file, project_id=s.fcm_project_id, base_url=s.fcm_base_url, timeout_s=s.fcm_timeout_s
            )
        self.fire_slots = asyncio.Semaphore(s.reminders_fire_concurrency)
        self.scheduler = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={"misfire_grace_time": None, "coalesce": False, "max_instances": 1},
        )
        self.scheduler.start()
        start_http_server(s.reminders_worker_metrics_port)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        log.info(
            "reminders worker started",
            extra={
                "fields": {
                    "worker": self.id,
                    "window_s": s.reminders_window_s,
                    "lease_s": s.reminders_lease_s,
                    "push": bool(self.fcm),
                }
            },
        )
        tasks = [
            asyncio.create_task(self._claim_loop(), name="claim"),
            asyncio.create_task(self._relay_loop(), name="outbox-relay"),
            asyncio.create_task(self._events_loop(), name="events"),
            asyncio.create_task(self._jobs_loop(), name="jobs"),
            asyncio.create_task(self._push_retry_loop(), name="push-retry"),
        ]
        await self.stop.wait()
        log.info("reminders worker stopping", extra={"fields": {"worker": self.id}})
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.scheduler.shutdown(wait=False)
        # Let fires in flight finish, then hand the rest of the window back at once.
        for _ in range(self.settings.reminders_fire_concurrency):
            try:
                await asyncio.wait_for(self.fire_slots.acquire(), timeout=5)
            except TimeoutError:
                break
        try:
            async with self.pool.acquire() as conn:
                await repo.release_leases(conn, self.id)
        except (OSError, asyncpg.PostgresError):
            log.warning("could not release leases; they will expire")
        await outbox.flush_quietly(self.pool, self.redis)
        await self.users.aclose()
        await self.auth.aclose()
        if self.fcm:
            await self.fcm.aclose()
        await self.redis.aclose()
        await self.pool.close()

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.stop.wait(), timeout=seconds)
        except TimeoutError:
            pass

    # ------------------------------------------------------------ claiming

    async def _claim_loop(self) -> None:
        s = self.settings
        last_renew = time.monotonic()
        while not self.stop.is_set():
            try:
                async with self.pool.acquire() as conn:
                    # Renewing locks the held rows briefly; a third of the lease is often enough.
                    if self.pending and time.monotonic() - last_renew >= s.reminders_lease_s / 3:
                        last_renew = time.monotonic()
                        await conn.execute(
                            "UPDATE reminders.reminders SET lease_until = now() + make_interval(secs => $2) "
                            "WHERE lease_owner = $1 AND id = ANY($3::uuid[])",
                            self.id,
                            s.reminders_lease_s,
                            list(self.pending),
                        )
                    rows = await repo.claim_due(
                        conn, self.id, s.reminders_window_s, s.reminders_lease_s, s.reminders_claim_batch
                    )
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                log.warning("claim failed; retrying", exc_info=True)
                await self._sleep(1)
                continue
            for row in rows:
                self._schedule(row["id"], row["version"], row["next_fire_at"], row["uid"])
            if rows:
                # Fetch preferences now, ahead of the fire, so firing itself is a cache hit.
                uids = {row["uid"] for row in rows}
                self._warmups.add(task := asyncio.create_task(self._warm_preferences(uids)))
                task.add_done_callback(self._warmups.discard)
            CLAIMED.inc(len(rows))
            HELD.set(len(self.pending))
            if len(rows) < s.reminders_claim_batch:
                await self._sleep(s.reminders_poll_s)

    async def _warm_preferences(self, uids: set[str]) -> None:
        gate = asyncio.Semaphore(16)

        async def one(uid: str) -> None:
            async with gate:
                await self.users.preferences(Principal(uid=uid, roles=("service",)))

        await asyncio.gather(*(one(u) for u in uids), return_exceptions=True)

    def _schedule(self, reminder_id: uuid.UUID, version: int, fire_at: datetime, uid: str) -> None:
        self.pending[reminder_id] = version
        self.scheduler.add_job(
            self._fire,
            "date",
            run_date=fire_at,
            args=[reminder_id, version, fire_at, uid],
            id=str(reminder_id),
            replace_existing=True,
        )

    # ------------------------------------------------------------ firing

    async def _fire(self, reminder_id: uuid.UUID, version: int, fire_at: datetime, uid: str) -> None:
        s = self.settings
        if self.pending.get(reminder_id) == version:
            del self.pending[reminder_id]
        prefs = await self.users.preferences(Principal(uid=uid, roles=("service",)))  # cached (warmed at claim)
        async with self.fire_slots:
            try:
                async with self.pool.acquire() as conn:
                    outcome = await service.fire(
                        conn,
                        reminder_id,
                        version,
                        fire_at,
                        prefs,
                        worker=self.id,
                        push_enabled=self.fcm is not None,
                        misfire_grace_s=s.reminders_misfire_grace_s,
                        keep_lease_s=s.reminders_lease_s,
                        window_s=s.reminders_window_s,
                    )
            except Exception:
                FIRED.labels("error").inc()
                # Handled: the claim is released and the fire retried (a busy database or a
                # slow dependency); the metric above is what alerts, not this line.
                log.warning(
                    "fire failed; handing the reminder back for another try",
                    exc_info=True,
                    extra={"fields": {"reminder_id": str(reminder_id)}},
                )
                try:
                    async with self.pool.acquire() as conn:
                        await conn.execute(
                            "UPDATE reminders.reminders SET lease_owner = NULL, lease_until = now() + interval '2 seconds' "
                            "WHERE id = $1 AND lease_owner = $2",
                            reminder_id,
                            self.id,
                        )
                except Exception:  # noqa: BLE001,S110
                    pass
                return
            FIRED.labels(outcome.result).inc()
            if outcome.next_version is not None and outcome.next_fire_at is not None:
                self._schedule(reminder_id, outcome.next_version, outcome.next_fire_at, uid)
            HELD.set(len(self.pending))
            if outcome.delivery is None:
                return
            d = outcome.delivery
            LATENESS.observe(max(0.0, (d["delivered_at"] - d["fire_at"]).total_seconds()))
        await wake(self.redis, uid)
        # reminder.fired committed with the delivery; the relay publishes it (one pass
        # serves every fire that committed meanwhile).
        self._relay_nudge.set()
        if d["push_pending"]:
            await self._push(d)

    async def _relay_loop(self) -> None:
        """Publish committed events: nudged after each delivery, and every few seconds for
        what a crash (of any reminders process) or a Redis outage left in the outbox."""
        while not self.stop.is_set():
            try:
                await asyncio.wait_for(self._relay_nudge.wait(), timeout=RELAY_INTERVAL_S)
            except TimeoutError:
                pass
            self._relay_nudge.clear()
            try:
                await outbox.flush_quietly(self.pool, self.redis)
            except Exception:
                # flush_quietly covers database and Redis errors; anything else must not end
                # the relay either (the rows stay in the outbox for the next pass).
                log.warning("outbox relay pass failed", exc_info=True)

    # ------------------------------------------------------------ push

    async def _push(self, d: asyncpg.Record) -> None:
        assert self.fcm is not None
        principal = Principal(uid=d["uid"], roles=("service",))
        devices = await self.auth.devices(principal)
        if devices is None:
            PUSH.labels("auth_unavailable").inc()
            return  # stays pending; the retry loop tries again
        targets = [dev for dev in devices if dev.push_token]
        if not targets:
            await repo.set_channel_status(self.pool, d["id"], "push", "no_devices", push_pending=False)
            PUSH.labels("no_devices").inc()
            return
        data = {
            "delivery_id": str(d["id"]),
            "reminder_id": str(d["reminder_id"]),
            "occurrence_at": d["occurrence_at"].isoformat(),
            "seq": str(d["seq"]),
        }
        results = await asyncio.gather(
            *(
                self.fcm.send(dev.push_token, d["title"], "Reminder", data, urgent=d["priority"] == "urgent")
                for dev in targets
            )
        )
        for dev, result in zip(targets, results, strict=True):
            PUSH.labels(result).inc()
            if result in ("unregistered", "invalid_token"):
                await self.auth.remove_device(principal, dev.id)
        if "sent" in results:
            status, pending = "sent", False
        elif all(r in ("unregistered", "invalid_token") for r in results):
            status, pending = "no_valid_devices", False
        else:
            status, pending = "failed", True
        await repo.set_channel_status(self.pool, d["id"], "push", status, push_pending=pending)

    async def _push_retry_loop(self) -> None:
        while not self.stop.is_set():
            await self._sleep(10)
            if self.fcm is None:
                continue
            try:
                async with self.pool.acquire() as conn:
                    stale = await repo.claim_stale_pushes(conn, older_than_s=30, max_attempts=5, batch=100)
                for d in stale:
                    await self._push(d)
            except Exception:
                log.warning("push retry pass failed", exc_info=True)

    # ------------------------------------------------------------ events from users

    async def _on_event(self, event_type: str, payload: dict) -> None:
        uid = payload.get("uid")
        if not uid:
            return
        if event_type == "user.timezone_changed":
            self.users.forget(uid)
            async with self.pool.acquire() as conn:
                n = await service.reanchor_user(conn, uid, payload.get("new_timezone") or "UTC")
            log.info("floating reminders re-anchored", extra={"fields": {"uid": uid, "count": n}})
        elif event_type == "user.deleted":
            self.users.forget(uid)
            async with self.pool.acquire() as conn:
                n = await service.erase_user(conn, uid)
            log.info("user's reminders erased", extra={"fields": {"uid": uid, "count": n}})
        elif event_type == "user.preferences_changed":
            self.users.forget(uid)

    async def _events_loop(self) -> None:
        consumer = self.settings.reminders_worker_id or socket.gethostname()
        while not self.stop.is_set():
            try:
                await events.consume(
                    self.redis,
                    [events.stream_name("users")],
                    group="reminders",
                    consumer=consumer,
                    handler=self._on_event,
                    stop=self.stop,
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("event consumer failed; restarting", exc_info=True)
                await self._sleep(1)

    # ------------------------------------------------------------ bulk jobs

    async def _jobs_loop(self) -> None:
        s = self.settings
        while not self.stop.is_set():
            try:
                async with self.pool.acquire() as conn:
                    job = await repo.claim_job(conn, self.id, s.reminders_lease_s)
                if job is not None:
                    await service.run_job(self.pool, job, self.id, s.reminders_lease_s, s.reminders_job_chunk)
                    log.info("bulk job finished", extra={"fields": {"job_id": str(job["id"])}})
                    continue
                await self.redis.brpop([JOB_QUEUE], timeout=2)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("bulk job pass failed; retrying", exc_info=True)
                await self._sleep(2)


def main() -> None:
    from .settings import reminders_settings

    common = CommonSettings()
    configure_logging(common.log_level)
    configure_sentry(common.sentry_dsn, common.env, "reminders-worker")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    asyncio.run(Worker(common, reminders_settings()).run())


if __name__ == "__main__":
    main()
