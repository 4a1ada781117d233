"""The notes worker process: transcription and embedding jobs from the Redis queue, the
sweep that re-queues lost work, and the ``user.deleted`` consumer.

Run as its own process (``uvicorn eindr_notes.worker:create_app --factory --port 9104``):
it serves only ``/healthz``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np
import redis.asyncio as aioredis
from eindr_common import events
from eindr_common.app import add_readiness_check, build_app
from fastapi import FastAPI
from prometheus_client import Counter, Gauge, Histogram
from redis.exceptions import RedisError

from . import domain, jobs, repository, service
from .clients import EmbeddingClient, InferenceRejected, InferenceUnavailable, STTClient
from .settings import NotesSettings
from .storage import Storage, create_storage

log = logging.getLogger("eindr.notes.worker")

USERS_GROUP = "notes"

JOBS = Counter("eindr_notes_jobs_total", "Notes jobs run", ["kind", "outcome"])
JOB_SECONDS = Histogram("eindr_notes_job_seconds", "Time to run one job", ["kind"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120))
UPLOAD_TO_TRANSCRIBED = Histogram(
    "eindr_notes_upload_to_transcribed_seconds", "From note creation to transcript stored",
    buckets=(0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300),
)
QUEUE_DEPTH = Gauge("eindr_notes_queue_depth", "Jobs waiting (stream + delayed retries)")


@dataclass
class Context:
    settings: NotesSettings
    pool: asyncpg.Pool
    redis: aioredis.Redis
    storage: Storage
    stt: STTClient
    embedder: EmbeddingClient


async def _retry_later(ctx: Context, kind: str, note_id: str, user_id: str, attempt: int, reason: str) -> bool:
    """Queue the next attempt with exponential back-off; False when attempts are exhausted."""
    if attempt >= ctx.settings.notes_job_max_attempts:
        return False
    delay = ctx.settings.notes_job_retry_base_s * (2 ** (attempt - 1))
    await jobs.enqueue_later(ctx.redis, delay, kind, note_id, user_id, attempt + 1)
    log.info("job will be retried", extra={"fields": {"kind": kind, "note_id": note_id, "attempt": attempt, "delay_s": delay, "reason": reason[:200]}})
    return True


async def _fail(ctx: Context, note_id: uuid.UUID, user_id: str, reason: str) -> None:
    async with ctx.pool.acquire() as conn:
        row = await repository.set_failed(conn, note_id, reason)
    if row is not None:
        await service.publish_quietly(ctx.redis, "note.transcription_failed", {"uid": user_id, "note_id": str(note_id), "reason": reason})


async def transcribe(ctx: Context, note_id: uuid.UUID, user_id: str, attempt: int) -> str:
    async with ctx.pool.acquire() as conn:
        row = await repository.get_note_unscoped(conn, note_id)
        if row is None or row["status"] != "pending" or not row["audio_key"]:
            return "skipped"  # deleted, already done, or retried meanwhile
        await repository.set_attempt(conn, note_id, attempt)
    fmt = row["audio_format"]
    try:
        audio = await ctx.storage.get(row["audio_key"])
    except FileNotFoundError:
        await _fail(ctx, note_id, user_id, "the audio file is missing from storage")
        return "failed"
    try:
        result = await ctx.stt.transcribe(audio, f"{note_id}.{fmt}", domain.AUDIO_MIME[fmt], row["language"])
    except InferenceRejected as exc:
        await _fail(ctx, note_id, user_id, str(exc))
        return "failed"
    except InferenceUnavailable as exc:
        if await _retry_later(ctx, jobs.TRANSCRIBE, str(note_id), user_id, attempt, str(exc)):
            return "retry"
        await _fail(ctx, note_id, user_id, f"{exc} (gave up after {attempt} attempts)")
        return "failed"
    async with ctx.pool.acquire() as conn:
        done = await repository.set_transcribed(conn, note_id, result.text, result.language, result.duration)
    if done is None:
        return "skipped"
    UPLOAD_TO_TRANSCRIBED.observe(max(0.0, time.time() - done["created_at"].timestamp()))
    await jobs.enqueue(ctx.redis, jobs.EMBED, str(note_id), user_id)
    await service.publish_quietly(ctx.redis, "note.transcribed", {"uid": user_id, "note_id": str(note_id), "language": result.language})
    return "done"


async def embed(ctx: Context, note_id: uuid.UUID, user_id: str, attempt: int) -> str:
    async with ctx.pool.acquire() as conn:
        row = await repository.get_note_unscoped(conn, note_id)
    if row is None:
        return "skipped"
    text = domain.embedding_text(row["title"], row["body"], row["transcript"])
    if text is None:
        async with ctx.pool.acquire() as conn:
            await repository.clear_embedding(conn, note_id)
        return "skipped"
    try:
        vector = await ctx.embedder.embed_one(text)
    except InferenceUnavailable as exc:
        # Exhausted retries are not lost: the sweep re-queues unembedded notes later.
        return "retry" if await _retry_later(ctx, jobs.EMBED, str(note_id), user_id, attempt, str(exc)) else "failed"
    except InferenceRejected as exc:
        log.error("embedding refused", extra={"fields": {"note_id": str(note_id), "error": str(exc)[:200]}})
        return "failed"
    async with ctx.pool.acquire() as conn:
        stored = await repository.set_embedding(conn, note_id, np.asarray(vector, dtype=np.float32), row["content_version"])
    return "done" if stored else "skipped"  # an edit came in meanwhile; its own job follows


async def run_job(ctx: Context, fields: dict[str, Any]) -> None:
    kind = fields.get("kind")
    try:
        note_id = uuid.UUID(fields.get("note_id", ""))
        attempt = int(fields.get("attempt", "1"))
    except ValueError:
        log.error("malformed job dropped", extra={"fields": {"job": str(fields)[:200]}})
        return
    user_id = fields.get("user_id", "")
    started = time.perf_counter()
    try:
        if kind == jobs.TRANSCRIBE:
            outcome = await transcribe(ctx, note_id, user_id, attempt)
        elif kind == jobs.EMBED:
            outcome = await embed(ctx, note_id, user_id, attempt)
        else:
            outcome = "unknown"
    except (RedisError, OSError, asyncpg.PostgresError) as exc:
        # An infrastructure hiccup: the same attempt counts, with back-off.
        log.exception("job failed unexpectedly", extra={"fields": {"kind": kind, "note_id": str(note_id)}})
        outcome = "error"
        try:
            if not await _retry_later(ctx, kind or "", str(note_id), user_id, attempt, repr(exc)) and kind == jobs.TRANSCRIBE:
                await _fail(ctx, note_id, user_id, "internal error while transcribing")
        except (RedisError, OSError, asyncpg.PostgresError):
            pass  # the sweep will find the note again
    JOBS.labels(kind or "unknown", outcome).inc()
    JOB_SECONDS.labels(kind or "unknown").observe(time.perf_counter() - started)


async def job_loop(ctx: Context, consumer: str, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await jobs.ensure_group(ctx.redis)
            entries = await jobs.read(ctx.redis, consumer, count=1, block_ms=1000)
        except (RedisError, OSError):
            log.warning("job queue unreachable; retrying", extra={"fields": {"consumer": consumer}})
            await _sleep(stop, 1.0)
            continue
        for entry_id, fields in entries:
            await run_job(ctx, fields)
            with contextlib.suppress(RedisError, OSError):
                await jobs.ack(ctx.redis, entry_id)


async def delayed_loop(ctx: Context, stop: asyncio.Event) -> None:
    while not stop.is_set():
        with contextlib.suppress(RedisError, OSError):
            await jobs.move_due(ctx.redis)
            QUEUE_DEPTH.set(await jobs.depth(ctx.redis))
        await _sleep(stop, 0.5)


async def sweep_once(ctx: Context) -> int:
    """Re-queue work whose job was lost; purge old tombstones. Returns jobs queued."""
    async with ctx.pool.acquire() as conn:
        rows = await repository.stale_work(conn, ctx.settings.notes_stale_after_s)
        await repository.purge_tombstones(conn)
    queued = 0
    for row in rows:
        # At most once per staleness period per note, whatever the number of workers.
        if await ctx.redis.set(f"eindr:jobs:notes:swept:{row['id']}", "1", nx=True, ex=max(1, int(ctx.settings.notes_stale_after_s))):
            kind = jobs.TRANSCRIBE if row["status"] == "pending" else jobs.EMBED
            await jobs.enqueue(ctx.redis, kind, str(row["id"]), row["user_id"])
            queued += 1
    return queued


async def sweep_loop(ctx: Context, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await sweep_once(ctx)
        except (RedisError, OSError, asyncpg.PostgresError):
            log.warning("sweep failed; will run again", exc_info=True)
        await _sleep(stop, ctx.settings.notes_sweep_interval_s)


def users_handler(ctx: Context):
    async def handle(event_type: str, payload: dict[str, Any]) -> None:
        if event_type != "user.deleted":
            return
        uid = payload.get("uid")
        if not isinstance(uid, str) or not 1 <= len(uid) <= 128:
            log.error("user.deleted without a valid uid; dropped")
            return
        await service.erase_user(ctx.pool, ctx.storage, uid, ctx.redis)

    return handle


async def users_loop(ctx: Context, consumer: str, stop: asyncio.Event) -> None:
    handler = users_handler(ctx)
    while not stop.is_set():
        try:
            await events.consume(ctx.redis, [events.stream_name("users")], USERS_GROUP, consumer, handler, stop=stop)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("users stream consumer failed; restarting")
            await _sleep(stop, 1.0)


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def create_app(settings: NotesSettings | None = None) -> FastAPI:
    settings = settings or NotesSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = Context(
            settings=settings,
            pool=app.state.pool,
            redis=app.state.redis,
            storage=create_storage(settings),
            stt=STTClient(settings.stt_url, settings.stt_model, settings.stt_timeout_s),
            embedder=EmbeddingClient(settings.intent_url, settings.embed_timeout_s),
        )
        app.state.ctx = ctx
        add_readiness_check(app, "storage", ctx.storage.check)
        stop = asyncio.Event()
        name = settings.notes_worker_consumer
        tasks = [asyncio.create_task(job_loop(ctx, f"{name}-{i}", stop)) for i in range(settings.notes_worker_concurrency)]
        tasks += [
            asyncio.create_task(delayed_loop(ctx, stop)),
            asyncio.create_task(sweep_loop(ctx, stop)),
            asyncio.create_task(users_loop(ctx, name, stop)),
        ]
        try:
            yield
        finally:
            stop.set()
            _, pending = await asyncio.wait(tasks, timeout=10)
            for task in pending:
                task.cancel()
            await ctx.stt.aclose()
            await ctx.embedder.aclose()

    app = build_app("notes-worker", settings=settings, database=True, redis=True, migrations=settings.migrations_path,
                    lifespan=lifespan, docs=False)
    return app
