"""HTTP routes of the history service (``/v1/history``) and of habit suggestions
(``/v1/suggestions``): parse, call a use case, respond."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from eindr_common.db import DbPool
from eindr_common.idempotency import IdempotencyKey
from eindr_common.identity import CurrentUser
from eindr_common.pagination import Pagination
from eindr_common.redis_client import Redis
from fastapi import APIRouter, Path, Query, Request, Response, status

from . import service
from .schemas import (
    Deleted,
    Interaction,
    InteractionCreate,
    InteractionPage,
    SearchResult,
    Suggestion,
    SuggestionList,
)

_PROBLEM = {"description": "Problem details (RFC 9457)", "content": {"application/problem+json": {}}}
_ERRORS = {400: _PROBLEM, 401: _PROBLEM, 404: _PROBLEM, 503: _PROBLEM}

router = APIRouter(prefix="/v1/history", tags=["history"], responses=_ERRORS)
suggestions = APIRouter(prefix="/v1/suggestions", tags=["suggestions"], responses=_ERRORS)

InteractionId = Annotated[uuid.UUID, Path()]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=Interaction, summary="Append one voice interaction")
async def append(body: InteractionCreate, user: CurrentUser, pool: DbPool, redis: Redis, idem: IdempotencyKey) -> Any:
    return await idem.run(body, lambda: service.append(pool, user, body, redis))


@router.get("", response_model=InteractionPage, summary="The caller's interactions, newest first")
async def list_interactions(
    user: CurrentUser,
    pool: DbPool,
    page: Pagination,
    occurred_from: Annotated[datetime | None, Query(alias="from")] = None,
    occurred_to: Annotated[datetime | None, Query(alias="to")] = None,
    intent: Annotated[str | None, Query(max_length=64)] = None,
    outcome: Annotated[Literal["success", "partial", "failed", "cancelled", "clarification"] | None, Query()] = None,
) -> Any:
    return await service.list_page(pool, user, page, occurred_from=occurred_from, occurred_to=occurred_to, intent=intent, outcome=outcome)


@router.delete("", response_model=Deleted, summary="Delete all of the caller's history")
async def delete_all(user: CurrentUser, pool: DbPool, redis: Redis) -> Any:
    return await service.delete_all(pool, user, redis)


@router.get("/search", response_model=SearchResult, summary="Hybrid search by meaning and by words")
async def search(request: Request, user: CurrentUser, pool: DbPool, q: Annotated[str, Query()],
                 limit: Annotated[int, Query(ge=1, le=50)] = 10) -> Any:
    return await service.search(pool, request.app.state.embedder, request.app.state.settings, user, q, limit)


@router.get("/{interaction_id}", response_model=Interaction)
async def get_interaction(interaction_id: InteractionId, user: CurrentUser, pool: DbPool) -> Any:
    return await service.get(pool, user, interaction_id)


@router.delete("/{interaction_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_interaction(interaction_id: InteractionId, user: CurrentUser, pool: DbPool, redis: Redis) -> Response:
    await service.delete_one(pool, user, interaction_id, redis)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@suggestions.get("", response_model=SuggestionList, summary="Habit suggestions (default: the pending ones)")
async def list_suggestions(user: CurrentUser, pool: DbPool,
                           status_filter: Annotated[Literal["pending", "accepted", "dismissed", "all"], Query(alias="status")] = "pending") -> Any:
    return await service.list_suggestions(pool, user, None if status_filter == "all" else status_filter)


@suggestions.post("/{suggestion_id}/accept", response_model=Suggestion, responses={409: _PROBLEM},
                  summary="Create the weekly reminder through the reminders service")
async def accept(request: Request, suggestion_id: Annotated[uuid.UUID, Path()], user: CurrentUser, pool: DbPool, redis: Redis) -> Any:
    return await service.accept(pool, request.app.state.reminders, user, suggestion_id, redis=redis)


@suggestions.post("/{suggestion_id}/dismiss", response_model=Suggestion, responses={409: _PROBLEM},
                  summary="Never suggest this habit again")
async def dismiss(suggestion_id: Annotated[uuid.UUID, Path()], user: CurrentUser, pool: DbPool, redis: Redis) -> Any:
    return await service.dismiss(pool, user, suggestion_id, redis)
