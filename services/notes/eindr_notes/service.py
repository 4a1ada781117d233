"""Use cases of the notes service: one transaction each, rules from ``domain``, SQL from
``repository``, audio through ``storage``, background work through ``jobs``."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from eindr_common import audit, events
from eindr_common.errors import BadRequest, Conflict, Forbidden, NotFound
from eindr_common.identity import Principal
from eindr_common.pagination import PageParams, encode_cursor
from prometheus_client import Counter
from redis.exceptions import RedisError

from . import domain, jobs, repository
from .clients import (
    EmbeddingClient,
    FriendsClient,
    InferenceRejected,
    InferenceUnavailable,
    SharedNote,
)
from .settings import NotesSettings
from .storage import Storage

log = logging.getLogger("eindr.notes")

NOTES_CREATED = Counter("eindr_notes_created_total", "Notes created", ["kind"])
SEARCHES = Counter("eindr_notes_searches_total", "Note searches", ["mode"])
STREAM_SERVICE = "notes"


def _not_found(note_id: Any) -> NotFound:
    return NotFound(f"note {note_id} does not exist", code="note_not_found")


def note_json(row: asyncpg.Record, storage: Storage | None, *, with_url: bool = True, access: str = "owner") -> dict[str, Any]:
    """A note as the API returns it: text fields neutralised (domain.neutralise); a friend's
    note carries its owner (``shared_by``) and the caller's ``access``."""
    audio = None
    if row["audio_key"]:
        fmt = row["audio_format"]
        url, expires = ("", 0)
        if storage is not None and with_url:
            url, expires = storage.signed_url(str(row["id"]), row["audio_key"], domain.AUDIO_MIME.get(fmt, "application/octet-stream"))
        audio = {
            "format": fmt,
            "bytes": row["audio_bytes"],
            "duration_s": row["duration_s"],
            "url": url,
            "url_expires_at": datetime.fromtimestamp(expires, UTC),
        }
    return {
        "id": row["id"],
        "title": domain.neutralise(row["title"]),
        "text": domain.neutralise(row["body"]),
        "transcript": domain.neutralise(row["transcript"]),
        "tags": [domain.neutralise(t) for t in row["tags"]],
        "status": row["status"],
        "failure_reason": row["failure_reason"],
        "language": row["language"],
        "indexed": row["indexed"],
        "audio": audio,
        "shared_by": row["user_id"] if access != "owner" else None,
        "access": access,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


async def publish_quietly(redis: aioredis.Redis, event_type: str, payload: dict[str, Any]) -> None:
    """Events are notifications after the commit; a Redis outage must not fail the write."""
    try:
        await events.publish(redis, STREAM_SERVICE, event_type, payload)
    except (RedisError, OSError) as exc:
        log.warning("event not published", extra={"fields": {"event": event_type, "error": type(exc).__name__}})


async def _audit(redis: aioredis.Redis, principal: Principal | None, action: str, note_id: Any, *, subject: str | None = None,
                 fields: list[str] | None = None) -> None:
    """One audit line per user-side write: which note, which fields; never their content."""
    await audit.record(redis, service="notes", actor=principal, action=action, resource_type="note",
                       resource_id=str(note_id) if note_id else None, subject_uid=subject,
                       details={"fields": fields} if fields else None)


async def enqueue_quietly(redis: aioredis.Redis, kind: str, note_id: str, user_id: str) -> None:
    """A job that cannot be queued now is picked up by the worker's sweep later."""
    try:
        await jobs.enqueue(redis, kind, note_id, user_id)
    except (RedisError, OSError) as exc:
        log.warning("job not queued; the sweep will queue it", extra={"fields": {"kind": kind, "error": type(exc).__name__}})


def _validated(title: str | None, text: str | None, tags: list[str] | None) -> tuple[str | None, str | None, list[str] | None]:
    errors = domain.field_problems(title, text, tags)
    if errors:
        raise BadRequest(
            "Invalid value for: " + ", ".join(sorted({e["field"] for e in errors})), code="validation_error", errors=errors
        )
    return domain.clean_text(title), domain.clean_text(text), domain.normalize_tags(tags) if tags is not None else None


async def create_note(
    pool: asyncpg.Pool,
    redis: aioredis.Redis,
    storage: Storage,
    principal: Principal,
    *,
    title: str | None,
    text: str | None,
    tags: list[str],
    language: str | None,
    audio: bytes | None,
    audio_format: str | None,
) -> dict[str, Any]:
    title, text, clean_tags = _validated(title, text, tags)
    if language is not None and not (2 <= len(language) <= 3 and language.isascii() and language.isalpha()):
        raise BadRequest("language must be an ISO 639-1 code", code="validation_error",
                         errors=[{"field": "language", "message": "an ISO 639-1 code such as 'en'"}])
    if audio is None and text is None:
        raise BadRequest("A note needs audio or text", code="empty_note",
                         errors=[{"field": "audio", "message": "send audio and/or text"}])
    note_id = uuid.uuid4()
    key = None
    if audio is not None:
        assert audio_format is not None
        key = domain.storage_key(principal.uid, str(note_id), audio_format)
        await storage.put(key, audio, domain.AUDIO_MIME[audio_format])
    try:
        async with pool.acquire() as conn:
            row = await repository.insert_note(
                conn,
                note_id=note_id,
                user_id=principal.uid,
                title=title,
                body=text,
                tags=clean_tags or [],
                status="pending" if audio is not None else "ready",
                language=language.lower() if language else None,
                audio_key=key,
                audio_format=audio_format,
                audio_bytes=len(audio) if audio is not None else None,
            )
    except BaseException:
        if key is not None:
            await storage.delete(key)
        raise
    NOTES_CREATED.labels("audio" if audio is not None else "text").inc()
    if audio is not None:
        await enqueue_quietly(redis, jobs.TRANSCRIBE, str(note_id), principal.uid)
    else:
        await enqueue_quietly(redis, jobs.EMBED, str(note_id), principal.uid)
    await publish_quietly(redis, "note.created", {"uid": principal.uid, "note_id": str(note_id), "has_audio": audio is not None})
    await _audit(redis, principal, "note.created", note_id)
    return note_json(row, storage)


@dataclass(frozen=True)
class Access:
    owner_id: str
    level: str  # domain.ACCESS_LEVELS


async def authorize(
    pool: asyncpg.Pool, friends: FriendsClient | None, principal: Principal, note_id: uuid.UUID, action: str
) -> Access:
    """THE authorization decision for one note id, for every route that takes one.

    The caller's own note (or their tombstone: deleting twice is fine) allows everything.
    Otherwise the friends service is asked which notes are shared with the caller (the same
    call lists and search make), and a share counts only if its owner really owns the note.
    No share → 404 (never reveal that the id exists); a share that does not allow
    ``action`` → 403."""
    async with pool.acquire() as conn:
        if await repository.owns(conn, principal.uid, note_id):
            return Access(principal.uid, "owner")
    grants = [g for g in await friends.shared_notes(principal) if g.note_id == str(note_id)] if friends is not None else []
    owner = None
    if grants:
        async with pool.acquire() as conn:
            owner = await repository.owner_among(conn, note_id, [g.owner_id for g in grants])
    if owner is None:
        raise _not_found(note_id)
    level = next(g.access for g in grants if g.owner_id == owner)  # the newest grant (friends lists newest first)
    if not domain.permits(level, action):
        if action == "edit":
            raise Forbidden(f"note {note_id} is shared with you read-only", code="note_read_only")
        raise Forbidden(f"only the owner may {action} note {note_id}", code="note_owner_only")
    return Access(owner, level)


async def get_note(pool: asyncpg.Pool, storage: Storage, friends: FriendsClient | None, principal: Principal, note_id: uuid.UUID) -> dict[str, Any]:
    """The caller's own note, or one a friend shares with them."""
    access = await authorize(pool, friends, principal, note_id, "read")
    async with pool.acquire() as conn:
        row = await repository.get_note(conn, access.owner_id, note_id)
    if row is None:
        raise _not_found(note_id)
    return note_json(row, storage, access=access.level)


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise BadRequest(f"{field} needs a UTC offset (RFC 3339)", code="validation_error",
                         errors=[{"field": field, "message": "an RFC 3339 date-time with offset"}])
    return value


async def list_notes(
    pool: asyncpg.Pool,
    storage: Storage,
    friends: FriendsClient | None,
    principal: Principal,
    page: PageParams,
    *,
    tag: str | None,
    created_from: datetime | None,
    created_to: datetime | None,
    status: str | None,
    scope: str = "all",
) -> dict[str, Any]:
    """The caller's notes and (scope ``all``/``shared``) the notes friends share with them,
    newest first; shared ones carry ``shared_by`` and the caller's ``access``."""
    after = None
    if page.after is not None:
        try:
            after = (datetime.fromisoformat(page.after[0]), uuid.UUID(page.after[1]))
        except (ValueError, TypeError, IndexError) as exc:
            raise BadRequest("cursor is not one this API issued", code="invalid_cursor",
                             errors=[{"field": "cursor", "message": "malformed cursor"}]) from exc
    if tag is not None:
        errors = domain.field_problems(None, None, [tag])
        if errors:
            raise BadRequest("Invalid value for: tag", code="validation_error", errors=[{"field": "tag", "message": errors[0]["message"]}])
        tag = domain.normalize_tags([tag])[0] if tag.strip() else None
    created_from, created_to = _aware(created_from, "from"), _aware(created_to, "to")
    shared = await friends.shared_notes(principal) if friends is not None and scope != "own" else []
    async with pool.acquire() as conn:
        rows = await repository.list_notes(
            conn, principal.uid, limit=page.limit + 1, after=after, tag=tag,
            created_from=created_from, created_to=created_to, status=status,
            own=scope != "shared", shared=shared,
        )
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    cursor = encode_cursor([rows[-1]["created_at"].isoformat(), str(rows[-1]["id"])]) if more and rows else None
    return {"items": [note_json(r, storage, access=_access_of(r, principal, shared)) for r in rows], "next_cursor": cursor}


def _access_of(row: asyncpg.Record, principal: Principal, shared: list[SharedNote]) -> str:
    """The caller's access to a row that a list or search returned (the repository matched
    a friend's row on its (owner, id) grant, so one exists; view is the least it can be)."""
    if row["user_id"] == principal.uid:
        return "owner"
    # The newest grant wins, as in authorize (friends lists newest first).
    return next((g.access for g in shared if (g.owner_id, g.note_id) == (row["user_id"], str(row["id"]))), "view")


async def update_note(
    pool: asyncpg.Pool, redis: aioredis.Redis, storage: Storage, friends: FriendsClient | None, principal: Principal,
    note_id: uuid.UUID, patch: dict[str, Any],
) -> dict[str, Any]:
    """Title, text, tags: by the owner, or by a friend the note is shared with for editing
    (the note stays the owner's: same id, the owner's embedding job, events under the owner)."""
    title, text, tags = _validated(patch.get("title"), patch.get("text"), patch.get("tags"))
    changes: dict[str, Any] = {}
    if "title" in patch:
        changes["title"] = title
    if "text" in patch:
        changes["body"] = text
    if "tags" in patch:
        if patch["tags"] is None:
            raise BadRequest("tags cannot be null; send [] to clear", code="validation_error",
                             errors=[{"field": "tags", "message": "a list (may be empty)"}])
        changes["tags"] = tags
    access = await authorize(pool, friends, principal, note_id, "edit")
    owner = access.owner_id
    async with pool.acquire() as conn, conn.transaction():
        row = await repository.get_note(conn, owner, note_id, for_update=True)
        if row is None:
            raise _not_found(note_id)
        if not changes:
            return note_json(row, storage, access=access.level)
        after_body = changes.get("body", row["body"])
        if row["audio_key"] is None and after_body is None and changes.get("title", row["title"]) is None:
            raise BadRequest("A text note cannot lose both its title and its text", code="empty_note",
                             errors=[{"field": "text", "message": "a note without audio needs text or a title"}])
        content_changed = any(changes.get(c, row[c]) != row[c] for c in ("title", "body", "tags"))
        row = await repository.update_note(conn, owner, note_id, changes, content_changed=content_changed)
    if content_changed:
        await enqueue_quietly(redis, jobs.EMBED, str(note_id), owner)
        await publish_quietly(redis, "note.updated", {"uid": owner, "note_id": str(note_id), "fields": sorted(patch), "by": principal.uid})
        await _audit(redis, principal, "note.updated", note_id, subject=owner, fields=sorted(patch))
    return note_json(row, storage, access=access.level)


async def delete_note(
    pool: asyncpg.Pool, redis: aioredis.Redis, storage: Storage, friends: FriendsClient | None, principal: Principal, note_id: uuid.UUID
) -> None:
    """Idempotent for the owner: deleting a deleted note is fine; a friend the note is shared
    with gets a 403; anyone else's id is a 404."""
    await authorize(pool, friends, principal, note_id, "delete")
    async with pool.acquire() as conn, conn.transaction():
        row = await repository.delete_note(conn, principal.uid, note_id)
    if row is None:
        return  # authorize found the caller's tombstone: deleted before
    if row["audio_key"]:
        # After the commit: a crash here leaves an orphan file, never a note without audio.
        try:
            await storage.delete(row["audio_key"])
        except OSError:
            log.exception("audio file not deleted", extra={"fields": {"note_id": str(note_id)}})
    await publish_quietly(redis, "note.deleted", {"uid": principal.uid, "note_id": str(note_id)})
    await _audit(redis, principal, "note.deleted", note_id)


async def retry_note(
    pool: asyncpg.Pool, redis: aioredis.Redis, storage: Storage, friends: FriendsClient | None, principal: Principal, note_id: uuid.UUID
) -> dict[str, Any]:
    await authorize(pool, friends, principal, note_id, "retry")
    async with pool.acquire() as conn, conn.transaction():
        row = await repository.get_note(conn, principal.uid, note_id, for_update=True)
        if row is None:
            raise _not_found(note_id)
        if row["status"] != "failed":
            raise Conflict(f"Only a failed note can be retried; this one is {row['status']}", code="note_not_failed")
        row = await repository.mark_for_retry(conn, principal.uid, note_id)
    await enqueue_quietly(redis, jobs.TRANSCRIBE, str(note_id), principal.uid)
    await _audit(redis, principal, "note.retried", note_id)
    return note_json(row, storage)


async def search(
    pool: asyncpg.Pool,
    storage: Storage,
    embedder: EmbeddingClient,
    settings: NotesSettings,
    principal: Principal,
    q: str,
    limit: int,
    friends: FriendsClient | None = None,
) -> dict[str, Any]:
    problem = domain.query_problem(q)
    if problem:
        raise BadRequest(f"q {problem}", code="validation_error", errors=[{"field": "q", "message": problem}])
    vector = None
    try:
        import numpy as np

        vector = np.asarray(await embedder.embed_one(q), dtype=np.float32)
    except (InferenceUnavailable, InferenceRejected) as exc:
        log.warning("semantic search unavailable; full-text only", extra={"fields": {"error": str(exc)[:200]}})
    shared = await friends.shared_notes(principal) if friends is not None else []
    async with pool.acquire() as conn:
        semantic, fulltext, similarity = await repository.search_candidates(
            conn, principal.uid, q, vector,
            candidates=settings.notes_search_candidates,
            max_distance=1.0 - settings.notes_search_min_similarity,
            ef_search=settings.notes_hnsw_ef_search,
            shared=shared,
            exact_max=settings.notes_exact_search_max,
        )
        fused = domain.rrf(semantic, fulltext, limit=limit)
        rows = {str(r["id"]): r for r in await repository.get_many(conn, principal.uid, [uuid.UUID(f.id) for f in fused], shared)}
    mode = "hybrid" if vector is not None else "fulltext"
    SEARCHES.labels(mode).inc()
    items = [
        {
            "note": note_json(rows[f.id], storage, access=_access_of(rows[f.id], principal, shared)),
            "score": f.score,
            "semantic_rank": f.semantic_rank,
            "fulltext_rank": f.fulltext_rank,
            "similarity": similarity.get(f.id),
        }
        for f in fused
        if f.id in rows
    ]
    return {"items": items, "mode": mode}


async def erase_user(pool: asyncpg.Pool, storage: Storage, user_id: str, redis: aioredis.Redis | None = None) -> int:
    """Everything of ``user_id``: rows, tombstones and every audio object under the user's
    prefix (idempotent: a re-delivered ``user.deleted`` finds nothing left)."""
    async with pool.acquire() as conn, conn.transaction():
        keys = await repository.audio_keys_of_user(conn, user_id)
        deleted = await repository.erase_user(conn, user_id)
    for key in keys:
        await storage.delete(key)
    await storage.delete_prefix(domain.storage_prefix(user_id))
    log.info("erased a deleted user's notes", extra={"fields": {"uid": user_id, "notes": deleted}})
    if redis is not None:
        await audit.record(redis, service="notes", actor=None, action="notes.erased", resource_type="user",
                           resource_id=user_id, subject_uid=user_id, details={"notes": deleted})
    return deleted
