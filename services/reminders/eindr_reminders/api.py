"""HTTP routes of the reminders service: parse, call a use case, respond."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Annotated, Literal

import asyncpg
from eindr_common.db import DbConn
from eindr_common.errors import BadRequest
from eindr_common.idempotency import Idempotency, IdempotencyKey
from eindr_common.identity import CurrentUser
from eindr_common.pagination import Pagination
from fastapi import APIRouter, Header, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel
from sse_starlette import EventSourceResponse, ServerSentEvent

from . import outbox, service
from . import repository as repo
from .schemas import (
    BulkCreate,
    BulkCreated,
    BulkJobCreate,
    CancelBody,
    CancelFilter,
    Cancelled,
    DeliveryPage,
    Job,
    Occurrences,
    Reminder,
    ReminderCreateFor,
    ReminderPage,
    ReminderPatch,
    SnoozeBody,
    Status,
)

log = logging.getLogger("eindr.reminders.api")
router = APIRouter(tags=["reminders"])
notifications = APIRouter(tags=["notifications"])

JOB_QUEUE = "eindr:reminders:jobs"

_no_nul = "must not contain NUL bytes"


def _check_query(name: str, value: str | None) -> None:
    if value is not None and "\x00" in value:
        raise BadRequest(
            f"Invalid value for: {name}", code="validation_error", errors=[{"field": name, "message": _no_nul}]
        )


async def _relay(request: Request) -> None:
    """Publish the events the use case committed to the outbox (it wrote them in its own
    transaction). A Redis hiccup never fails the request: the rows stay in the outbox and
    the worker's background relay publishes them."""
    await outbox.flush_quietly(request.app.state.pool, request.app.state.redis)


async def _created(idem: Idempotency, body, model: type[BaseModel], coro, request: Request) -> Response:
    """201 with a use case's result, serialised through its response model (so a replayed
    Idempotency-Key response is byte-for-byte what a normal response looks like)."""
    if idem.key is None:
        # Nothing to store for a replay: pydantic's compiled encoder writes the body in one
        # pass (the replay path walks it through jsonable_encoder: tens of ms for 1,000 items).
        result = model.model_validate(await coro)
        await _relay(request)
        return Response(result.model_dump_json(), status_code=201, media_type="application/json")

    async def produce():
        result = await coro
        await _relay(request)
        return model.model_validate(result).model_dump(mode="json")

    return await idem.run(body, produce)


@router.post("/v1/reminders", status_code=201, response_model=Reminder)
async def create_reminder(
    body: ReminderCreateFor, request: Request, user: CurrentUser, conn: DbConn, idem: IdempotencyKey
):
    """Your reminder, or with `for_user_id` one for a friend who granted you `trusted`
    (403 `friend_permission_required` otherwise)."""
    state = request.app.state
    return await _created(idem, body, Reminder, service.create(conn, state.users, state.friends, user, body), request)


@router.get("/v1/reminders", response_model=ReminderPage)
async def list_reminders(
    request: Request,
    user: CurrentUser,
    conn: DbConn,
    page: Pagination,
    status: Status | None = None,
    due_from: AwareDatetime | None = None,
    due_to: AwareDatetime | None = None,
    tag: Annotated[str | None, Query(max_length=50)] = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    scope: Annotated[
        Literal["all", "own", "shared"],
        Query(description="own: yours only; shared: friends' reminders shared with you"),
    ] = "all",
):
    """Your reminders and the ones friends share with you (`shared_by`, `access`), by due time."""
    _check_query("tag", tag)
    _check_query("q", q)
    return await service.list_(
        conn,
        user,
        friends=request.app.state.friends,
        scope=scope,
        status=status,
        due_from=due_from,
        due_to=due_to,
        tag=tag,
        q=q,
        limit=page.limit,
        after=page.after,
    )


@router.post("/v1/reminders:bulk", status_code=201, response_model=BulkCreated)
async def bulk_create(body: BulkCreate, request: Request, user: CurrentUser, conn: DbConn, idem: IdempotencyKey):
    """Up to 1,000 reminders, all or nothing: a 400 names the index and field of every bad item."""
    return await _created(
        idem, body, BulkCreated, service.create_many(conn, request.app.state.users, user, body.items), request
    )


@router.post("/v1/reminders:cancel", response_model=Cancelled)
async def cancel_by_filter(body: CancelFilter, request: Request, user: CurrentUser, conn: DbConn):
    result = await service.cancel_matching(conn, user, body)
    await _relay(request)
    return result


@router.post("/v1/reminders/jobs", status_code=202, response_model=Job)
async def submit_bulk_job(body: BulkJobCreate, request: Request, user: CurrentUser, conn: DbConn, idem: IdempotencyKey):
    """Up to 50,000 reminders, created in the background; per-item failures are reported."""

    async def produce():
        job = await service.submit_job(conn, request.app.state.users, user, body.items)
        await request.app.state.redis.lpush(JOB_QUEUE, str(job["id"]))
        return Job.model_validate(job).model_dump(mode="json")

    return await idem.run(body, produce, status_code=202)


@router.get("/v1/reminders/jobs/{job_id}", response_model=Job)
async def get_job(job_id: uuid.UUID, user: CurrentUser, conn: DbConn):
    return await service.get_job(conn, user, job_id)


@router.get("/v1/reminders/{reminder_id}", response_model=Reminder)
async def get_reminder(reminder_id: uuid.UUID, request: Request, user: CurrentUser, conn: DbConn):
    return await service.get(conn, request.app.state.friends, user, reminder_id)


@router.patch("/v1/reminders/{reminder_id}", response_model=Reminder)
async def patch_reminder(
    reminder_id: uuid.UUID, body: ReminderPatch, request: Request, user: CurrentUser, conn: DbConn
):
    reminder = await service.patch(conn, request.app.state.users, request.app.state.friends, user, reminder_id, body)
    await _relay(request)
    return reminder


@router.delete("/v1/reminders/{reminder_id}", status_code=204)
async def delete_reminder(reminder_id: uuid.UUID, request: Request, user: CurrentUser, conn: DbConn):
    await service.delete(conn, request.app.state.friends, user, reminder_id)
    await _relay(request)
    return Response(status_code=204)


@router.post("/v1/reminders/{reminder_id}/cancel", response_model=Reminder)
async def cancel_reminder(
    reminder_id: uuid.UUID, request: Request, user: CurrentUser, conn: DbConn, body: CancelBody | None = None
):
    scope = (body or CancelBody()).scope
    reminder = await service.cancel(conn, request.app.state.friends, user, reminder_id, scope)
    await _relay(request)
    return reminder


@router.post("/v1/reminders/{reminder_id}/snooze", response_model=Reminder)
async def snooze_reminder(reminder_id: uuid.UUID, body: SnoozeBody, request: Request, user: CurrentUser, conn: DbConn):
    reminder = await service.snooze(conn, request.app.state.friends, user, reminder_id, body)
    await _relay(request)
    return reminder


@router.post("/v1/reminders/{reminder_id}/complete", response_model=Reminder)
async def complete_reminder(reminder_id: uuid.UUID, request: Request, user: CurrentUser, conn: DbConn):
    reminder = await service.complete(conn, request.app.state.friends, user, reminder_id)
    await _relay(request)
    return reminder


@router.post("/v1/reminders/{reminder_id}/reopen", response_model=Reminder)
async def reopen_reminder(reminder_id: uuid.UUID, request: Request, user: CurrentUser, conn: DbConn):
    reminder = await service.reopen(conn, request.app.state.friends, user, reminder_id)
    await _relay(request)
    return reminder


@router.post("/v1/reminders/{reminder_id}/refuse", response_model=Reminder)
async def refuse_reminder(reminder_id: uuid.UUID, request: Request, user: CurrentUser, conn: DbConn):
    """Turn down a reminder a friend created for you (cancelled, never fires, `refused_at`)."""
    reminder = await service.refuse(conn, request.app.state.friends, user, reminder_id)
    await _relay(request)
    return reminder


@router.get("/v1/reminders/{reminder_id}/occurrences", response_model=Occurrences)
async def list_occurrences(
    reminder_id: uuid.UUID,
    request: Request,
    user: CurrentUser,
    conn: DbConn,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
):
    return await service.occurrences(conn, request.app.state.friends, user, reminder_id, limit)


# ---------------------------------------------------------------- notifications


@notifications.get("/v1/notifications", response_model=DeliveryPage)
async def list_notifications(user: CurrentUser, conn: DbConn, page: Pagination):
    """Past deliveries, newest first, with their status per channel."""
    return await service.list_deliveries(conn, user, page.limit, page.after)


@notifications.get(
    "/v1/notifications/stream",
    response_class=EventSourceResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "`event: reminder`, `id`: the delivery's seq"}
    },
)
async def stream_notifications(
    request: Request,
    user: CurrentUser,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    after: Annotated[
        int | None, Query(ge=0, description="Resume after this seq (for clients that cannot set Last-Event-ID)")
    ] = None,
):
    """Server-sent events: one `reminder` event per delivery, in order, resumable with
    `Last-Event-ID` (the `id` of the last event the client saw). Without it, only new ones."""
    pool = request.app.state.pool
    hub = request.app.state.hub
    settings = request.app.state.reminders_settings
    if last_event_id is not None:
        if not last_event_id.strip().isdigit() or len(last_event_id) > 18:
            raise BadRequest(
                "Last-Event-ID must be the id of an event from this stream",
                code="validation_error",
                errors=[{"field": "Last-Event-ID", "message": "a non-negative integer"}],
            )
        start = int(last_event_id)
    elif after is not None:
        start = after
    else:
        start = await repo.last_seq(pool, user.uid)
    uid = user.uid

    async def events():
        cursor = start
        wakeup = hub.register(uid)
        try:
            while True:
                wakeup.clear()
                try:
                    rows = await repo.deliveries_after(pool, uid, cursor)
                except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    # A database hiccup must not end the stream: the cursor is kept, so
                    # nothing is skipped or sent twice when the next poll succeeds.
                    log.warning("notification stream poll failed; retrying", exc_info=True)
                    await asyncio.sleep(1)
                    continue
                for row in rows:
                    cursor = row["seq"]
                    data = json.dumps(jsonable_encoder(service.to_delivery(row)))
                    yield ServerSentEvent(data=data, event="reminder", id=str(cursor))
                if len(rows) >= 500:
                    continue
                try:
                    await asyncio.wait_for(wakeup.wait(), timeout=settings.reminders_sse_poll_s)
                except TimeoutError:
                    pass
        finally:
            hub.unregister(uid, wakeup)

    return EventSourceResponse(
        events(), ping=settings.reminders_sse_ping_s, headers={"cache-control": "no-cache", "x-accel-buffering": "no"}
    )
