"""Use cases of the history service."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import numpy as np
from eindr_common import audit
from eindr_common.errors import BadRequest, Conflict, NotFound
from eindr_common.http_client import ServiceClient
from eindr_common.identity import Principal
from eindr_common.pagination import PageParams, encode_cursor
from prometheus_client import Counter

from . import domain, repository
from .clients import EmbeddingClient, EmbeddingUnavailable
from .settings import HistorySettings

log = logging.getLogger("eindr.history")

APPENDED = Counter("eindr_history_interactions_total", "Interactions appended", ["outcome"])
SEARCHES = Counter("eindr_history_searches_total", "History searches", ["mode"])
SUGGESTION_DECISIONS = Counter("eindr_history_suggestion_decisions_total", "Suggestions accepted or dismissed", ["decision"])


async def _audit(redis: Any, principal: Principal | None, action: str, resource_type: str, resource_id: Any = None,
                 subject: str | None = None, details: dict[str, Any] | None = None) -> None:
    """One audit line per user-side write (ids and counts, never the content)."""
    if redis is not None:
        await audit.record(redis, service="history", actor=principal, action=action, resource_type=resource_type,
                           resource_id=str(resource_id) if resource_id else None, subject_uid=subject, details=details)


def _bad(field: str, message: str) -> BadRequest:
    return BadRequest(f"Invalid value for: {field}", code="validation_error", errors=[{"field": field, "message": message}])


def interaction_json(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "occurred_at": row["occurred_at"],
        "transcript": domain.neutralise(row["transcript"]),
        "language": row["language"],
        "intent": domain.neutralise(row["intent"]),
        "slots": domain.neutralise_json(row["slots"]),
        "actions": domain.neutralise_json(row["actions"]),
        "reply": domain.neutralise(row["reply"]),
        "latency_ms": row["latency_ms"],
        "outcome": row["outcome"],
        "indexed": row["indexed"],
        "created_at": row["created_at"],
    }


def suggestion_json(row: asyncpg.Record) -> dict[str, Any]:
    m = row["minute_of_day"]
    text = f"Make '{row['title']}' a weekly reminder on {domain.DAY_NAMES[row['weekday']]} at {m // 60:02d}:{m % 60:02d}?"
    return {
        "id": row["id"], "title": domain.neutralise(row["title"]), "text": domain.neutralise(text), "rrule": row["rrule"],
        "weekday": row["weekday"], "time": f"{m // 60:02d}:{m % 60:02d}", "timezone": row["timezone"],
        "occurrences": row["occurrences"], "status": row["status"], "reminder_id": row["reminder_id"],
        "created_at": row["created_at"], "decided_at": row["decided_at"],
    }


def validate_interaction(body: Any, now: datetime) -> dict[str, Any]:
    errors: list[dict[str, str]] = []
    for name, multiline in (("transcript", True), ("reply", True), ("language", False), ("intent", False)):
        value = getattr(body, name)
        if value is not None and (problem := domain.text_problem(value, multiline=multiline)):
            errors.append({"field": name, "message": problem})
    if not body.transcript.strip():
        errors.append({"field": "transcript", "message": "must not be blank"})
    for name in ("slots", "actions", "latency_ms"):
        if problem := domain.json_problem(getattr(body, name)):
            errors.append({"field": name, "message": problem})
    occurred = body.occurred_at or now
    if occurred > now + timedelta(minutes=5):
        errors.append({"field": "occurred_at", "message": "must not be in the future"})
    elif occurred < now - timedelta(days=365):
        errors.append({"field": "occurred_at", "message": "at most 365 days in the past"})
    if errors:
        raise BadRequest("Invalid value for: " + ", ".join(sorted({e["field"] for e in errors})), code="validation_error", errors=errors)
    return {
        "occurred_at": occurred, "transcript": body.transcript.strip(), "language": body.language, "intent": body.intent,
        "slots": body.slots, "actions": body.actions, "reply": body.reply, "latency_ms": body.latency_ms, "outcome": body.outcome,
    }


async def append(pool: asyncpg.Pool, principal: Principal, body: Any, redis: Any = None) -> dict[str, Any]:
    data = validate_interaction(body, datetime.now(UTC))
    async with pool.acquire() as conn:
        row = await repository.insert_interaction(conn, principal.uid, data)
    APPENDED.labels(data["outcome"]).inc()
    await _audit(redis, principal, "history.appended", "interaction", row["id"])
    return interaction_json(row)


async def get(pool: asyncpg.Pool, principal: Principal, interaction_id: uuid.UUID) -> dict[str, Any]:
    async with pool.acquire() as conn:
        row = await repository.get_interaction(conn, principal.uid, interaction_id)
    if row is None:
        raise NotFound(f"interaction {interaction_id} does not exist", code="interaction_not_found")
    return interaction_json(row)


async def list_page(pool: asyncpg.Pool, principal: Principal, page: PageParams, *, occurred_from: datetime | None,
                    occurred_to: datetime | None, intent: str | None, outcome: str | None) -> dict[str, Any]:
    for name, value in (("from", occurred_from), ("to", occurred_to)):
        if value is not None and value.tzinfo is None:
            raise _bad(name, "an RFC 3339 date-time with offset")
    if intent is not None and (problem := domain.text_problem(intent)):
        raise _bad("intent", problem)
    after = None
    if page.after is not None:
        try:
            after = (datetime.fromisoformat(page.after[0]), uuid.UUID(page.after[1]))
        except (ValueError, TypeError, IndexError) as exc:
            raise BadRequest("cursor is not one this API issued", code="invalid_cursor",
                             errors=[{"field": "cursor", "message": "malformed cursor"}]) from exc
    async with pool.acquire() as conn:
        rows = await repository.list_interactions(conn, principal.uid, limit=page.limit + 1, after=after,
                                                  occurred_from=occurred_from, occurred_to=occurred_to, intent=intent, outcome=outcome)
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    cursor = encode_cursor([rows[-1]["occurred_at"].isoformat(), str(rows[-1]["id"])]) if more and rows else None
    return {"items": [interaction_json(r) for r in rows], "next_cursor": cursor}


async def delete_one(pool: asyncpg.Pool, principal: Principal, interaction_id: uuid.UUID, redis: Any = None) -> None:
    async with pool.acquire() as conn:
        if not await repository.delete_interaction(conn, principal.uid, interaction_id):
            raise NotFound(f"interaction {interaction_id} does not exist", code="interaction_not_found")
    await _audit(redis, principal, "history.deleted", "interaction", interaction_id)


async def delete_all(pool: asyncpg.Pool, principal: Principal, redis: Any = None) -> dict[str, int]:
    async with pool.acquire() as conn:
        n = await repository.delete_all(conn, principal.uid)
    await _audit(redis, principal, "history.cleared", "history", details={"deleted": n})
    return {"deleted": n}


async def search(pool: asyncpg.Pool, embedder: EmbeddingClient, settings: HistorySettings, principal: Principal, q: str, limit: int) -> dict[str, Any]:
    if problem := domain.query_problem(q):
        raise _bad("q", problem)
    vector = None
    try:
        vector = np.asarray((await embedder.embed([q]))[0], dtype=np.float32)
    except EmbeddingUnavailable as exc:
        log.warning("semantic search unavailable; full-text only", extra={"fields": {"error": str(exc)[:200]}})
    async with pool.acquire() as conn:
        semantic, fulltext, similarity = await repository.search_candidates(
            conn, principal.uid, q, vector, candidates=settings.history_search_candidates,
            max_distance=1.0 - settings.history_search_min_similarity, ef_search=settings.history_hnsw_ef_search,
            exact_max=settings.history_exact_search_max,
        )
        fused = domain.rrf(semantic, fulltext, limit=limit)
        rows = {str(r["id"]): r for r in await repository.get_many(conn, principal.uid, [uuid.UUID(f[0]) for f in fused])}
    mode = "hybrid" if vector is not None else "fulltext"
    SEARCHES.labels(mode).inc()
    return {
        "items": [
            {"interaction": interaction_json(rows[i]), "score": s, "semantic_rank": sr, "fulltext_rank": fr, "similarity": similarity.get(i)}
            for i, s, sr, fr in fused if i in rows
        ],
        "mode": mode,
    }


# --- suggestions ---------------------------------------------------------------------------


async def list_suggestions(pool: asyncpg.Pool, principal: Principal, status: str | None) -> dict[str, Any]:
    async with pool.acquire() as conn:
        return {"items": [suggestion_json(r) for r in await repository.list_suggestions(conn, principal.uid, status)]}


def _suggestion_not_found(suggestion_id: uuid.UUID) -> NotFound:
    return NotFound(f"suggestion {suggestion_id} does not exist", code="suggestion_not_found")


async def dismiss(pool: asyncpg.Pool, principal: Principal, suggestion_id: uuid.UUID, redis: Any = None) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction():
        row = await repository.get_suggestion(conn, principal.uid, suggestion_id, for_update=True)
        if row is None:
            raise _suggestion_not_found(suggestion_id)
        if row["status"] == "accepted":
            raise Conflict("This suggestion was accepted already", code="suggestion_decided")
        if row["status"] == "pending":
            row = await repository.decide_suggestion(conn, principal.uid, suggestion_id, "dismissed", None)
            SUGGESTION_DECISIONS.labels("dismissed").inc()
            await _audit(redis, principal, "suggestion.dismissed", "suggestion", suggestion_id)
    return suggestion_json(row)


async def accept(pool: asyncpg.Pool, reminders: ServiceClient, principal: Principal, suggestion_id: uuid.UUID,
                 now: datetime | None = None, redis: Any = None) -> dict[str, Any]:
    """Creates the weekly reminder through the reminders service (Idempotency-Key = the
    suggestion, so a retry after a lost answer never creates two), then marks it accepted.
    If reminders is down the suggestion stays pending and the caller gets the 503."""
    async with pool.acquire() as conn:
        row = await repository.get_suggestion(conn, principal.uid, suggestion_id)
    if row is None:
        raise _suggestion_not_found(suggestion_id)
    if row["status"] == "accepted":
        return suggestion_json(row)
    if row["status"] == "dismissed":
        raise Conflict("This suggestion was dismissed", code="suggestion_decided")
    zone = ZoneInfo(row["timezone"]) if row["timezone"] else UTC
    now_local = (now or datetime.now(UTC)).astimezone(zone)
    local_due = domain.next_local(row["weekday"], row["minute_of_day"], now_local)
    body: dict[str, Any] = {
        "title": row["title"],
        "local_due": local_due.isoformat(),
        "rrule": row["rrule"],
        "source": "voice",
    }
    if row["timezone"]:
        body["timezone"] = row["timezone"]
    response = await reminders.call("POST", "/v1/reminders", principal, json=body,
                                    headers={"idempotency-key": f"habit-suggestion-{suggestion_id}"})
    reminder_id = str(response.json().get("id"))
    async with pool.acquire() as conn, conn.transaction():
        current = await repository.get_suggestion(conn, principal.uid, suggestion_id, for_update=True)
        if current is None:
            raise _suggestion_not_found(suggestion_id)
        row = await repository.decide_suggestion(conn, principal.uid, suggestion_id, "accepted", reminder_id)
    SUGGESTION_DECISIONS.labels("accepted").inc()
    await _audit(redis, principal, "suggestion.accepted", "suggestion", suggestion_id, details={"reminder_id": reminder_id})
    return suggestion_json(row)


async def erase_user(pool: asyncpg.Pool, user_id: str, redis: Any = None) -> int:
    async with pool.acquire() as conn, conn.transaction():
        n = await repository.erase_user(conn, user_id)
    await _audit(redis, None, "history.erased", "user", user_id, subject=user_id, details={"interactions": n})
    log.info("erased a deleted user's history", extra={"fields": {"uid": user_id, "interactions": n}})
    return n
