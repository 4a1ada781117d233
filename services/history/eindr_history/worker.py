"""The history worker process: embeddings for new interactions (the table is the queue:
``FOR UPDATE SKIP LOCKED``), the daily retention job, the habit-detection job, and the
users-stream consumer (``user.deleted``, ``user.preferences_changed``).

Run as its own process (``uvicorn eindr_history.worker:create_app --factory --port 9108``);
it serves only ``/healthz``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import numpy as np
import redis.asyncio as aioredis
from eindr_common import events
from eindr_common.app import build_app
from fastapi import FastAPI
from prometheus_client import Counter

from . import domain, repository, service
from .clients import EmbeddingClient, EmbeddingUnavailable
from .settings import HistorySettings

log = logging.getLogger("eindr.history.worker")

USERS_GROUP = "history"
EMBEDDED = Counter("eindr_history_embedded_total", "Interactions embedded")
RETENTION_DELETED = Counter("eindr_history_retention_deleted_total", "Interactions deleted by the retention job")
SUGGESTED = Counter("eindr_history_suggestions_total", "Habit suggestions created")


async def embed_backlog(pool: asyncpg.Pool, embedder: EmbeddingClient, settings: HistorySettings, batch: int = 32) -> int:
    """Embed one batch of interactions that have no embedding yet; returns how many."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await repository.claim_unembedded(conn, batch, settings.history_embed_max_attempts)
        if not rows:
            return 0
        texts = [r["transcript"] + ("\n" + r["reply"] if r["reply"] else "") for r in rows]
        try:
            vectors = await embedder.embed(texts)
        except EmbeddingUnavailable as exc:
            await repository.count_attempt(conn, [r["id"] for r in rows])
            log.warning("embedding failed; will retry", extra={"fields": {"error": str(exc)[:200], "rows": len(rows)}})
            return 0
        await repository.set_embeddings(conn, [(r["id"], np.asarray(v, dtype=np.float32)) for r, v in zip(rows, vectors)])
    EMBEDDED.inc(len(rows))
    return len(rows)


async def run_retention(pool: asyncpg.Pool, settings: HistorySettings, now: datetime | None = None) -> int:
    """Delete interactions older than each user's retention; ``now`` is injectable (tests
    run it with a clock moved forward)."""
    async with pool.acquire() as conn:
        n = await repository.apply_retention(conn, now or datetime.now(UTC), settings.history_default_retention_days)
    RETENTION_DELETED.inc(n)
    if n:
        log.info("retention deleted interactions", extra={"fields": {"deleted": n}})
    return n


async def detect_habits_for(pool: asyncpg.Pool, embedder: EmbeddingClient, settings: HistorySettings, user_id: str, now: datetime) -> int:
    since = now - timedelta(days=settings.history_habits_window_days)
    async with pool.acquire() as conn, conn.transaction():
        if not await repository.try_user_lock(conn, user_id):
            return 0  # another worker is on this user
        rows = await repository.reminder_interactions(conn, user_id, since, domain.REMINDER_INTENT)
        evs = [e for e in (domain.reminder_event(r["slots"], r["occurred_at"]) for r in rows) if e is not None]
        if len(evs) < settings.history_habits_min_occurrences:
            return 0
        titles = sorted({e.title for e in evs})
        vectors_by_title = dict(zip(titles, await embedder.embed(titles)))
        known = [(k["weekday"], k["minute_of_day"], np.asarray(k["embedding"].to_numpy(), dtype=np.float32))
                 for k in await repository.known_suggestions(conn, user_id)]
        habits = domain.detect_habits(
            evs, [np.asarray(vectors_by_title[e.title], dtype=np.float32) for e in evs],
            similarity=settings.history_habits_similarity, window_min=settings.history_habits_time_window_min,
            min_occurrences=settings.history_habits_min_occurrences, known=known,
        )
        created = 0
        for habit in habits:
            if await repository.insert_suggestion(conn, user_id, habit, habit.rrule):
                created += 1
    SUGGESTED.inc(created)
    return created


async def run_habits(pool: asyncpg.Pool, embedder: EmbeddingClient, settings: HistorySettings, now: datetime | None = None) -> int:
    now = now or datetime.now(UTC)
    async with pool.acquire() as conn:
        users = await repository.users_with_reminders(conn, now - timedelta(days=settings.history_habits_window_days), domain.REMINDER_INTENT)
    created = 0
    for uid in users:
        try:
            created += await detect_habits_for(pool, embedder, settings, uid, now)
        except EmbeddingUnavailable as exc:
            log.warning("habit detection postponed: embeddings unavailable", extra={"fields": {"error": str(exc)[:200]}})
            break
    return created


def users_handler(pool: asyncpg.Pool, redis: aioredis.Redis | None = None):
    async def handle(event_type: str, payload: dict[str, Any]) -> None:
        uid = payload.get("uid")
        if not isinstance(uid, str) or not 1 <= len(uid) <= 128:
            return
        if event_type == "user.deleted":
            await service.erase_user(pool, uid, redis)
        elif event_type == "user.preferences_changed":
            days = (payload.get("preferences") or {}).get("history_retention_days")
            if isinstance(days, int) and 1 <= days <= 3650:
                async with pool.acquire() as conn:
                    await repository.set_retention(conn, uid, days)

    return handle


async def _every(stop: asyncio.Event, interval_s: float, job: Callable[[], Awaitable[Any]], name: str) -> None:
    while not stop.is_set():
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; will run again", name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)


async def _embed_loop(pool, embedder, settings, stop: asyncio.Event) -> None:
    async def drain() -> None:
        while not stop.is_set() and await embed_backlog(pool, embedder, settings) > 0:
            pass

    await _every(stop, settings.history_embed_interval_s, drain, "embedding")


async def _users_loop(pool: asyncpg.Pool, redis: aioredis.Redis, consumer: str, stop: asyncio.Event) -> None:
    handler = users_handler(pool, redis)

    async def consume() -> None:
        await events.consume(redis, [events.stream_name("users")], USERS_GROUP, consumer, handler, stop=stop)

    await _every(stop, 1.0, consume, "users stream consumer")


def create_app(settings: HistorySettings | None = None) -> FastAPI:
    settings = settings or HistorySettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool, redis = app.state.pool, app.state.redis
        embedder = EmbeddingClient(settings.intent_url, settings.embed_timeout_s)
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(_embed_loop(pool, embedder, settings, stop)),
            asyncio.create_task(_every(stop, settings.history_retention_interval_s, lambda: run_retention(pool, settings), "retention")),
            asyncio.create_task(_every(stop, settings.history_habits_interval_s, lambda: run_habits(pool, embedder, settings), "habits")),
            asyncio.create_task(_users_loop(pool, redis, settings.history_worker_consumer, stop)),
        ]
        try:
            yield
        finally:
            stop.set()
            _, pending = await asyncio.wait(tasks, timeout=10)
            for task in pending:
                task.cancel()
            await embedder.aclose()

    return build_app("history-worker", settings=settings, database=True, redis=True, migrations=settings.migrations_path,
                     lifespan=lifespan, docs=False)
