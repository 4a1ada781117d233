"""HTTP routes of the ledger service: parse, call a use case, respond."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

import orjson
from eindr_common.idempotency import IdempotencyKey
from eindr_common.identity import CurrentUser
from eindr_common.pagination import Page, Pagination
from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse, StreamingResponse

from . import service
from .schemas import (
    Balances,
    ContactBalance,
    ContactKey,
    DisputeRequest,
    Entry,
    EntryCreate,
    EntryDetail,
    EntryPatch,
    SettleRequest,
    SettleResult,
)

_PROBLEM = {"description": "Problem details (RFC 9457)", "content": {"application/problem+json": {}}}
_ERRORS = {400: _PROBLEM, 401: _PROBLEM, 403: _PROBLEM, 404: _PROBLEM, 409: _PROBLEM, 503: _PROBLEM}
DEGRADED_HEADER = "eindr-degraded"

router = APIRouter(prefix="/v1/ledger", tags=["ledger"], responses=_ERRORS)

EntryIdPath = Annotated[str, Path(min_length=1, max_length=64, description="Entry id (UUID)")]
CurrencyQuery = Annotated[str | None, Query(min_length=3, max_length=3, description="ISO 4217 code")]


def deps(request: Request) -> service.Deps:
    return request.app.state.ledger_deps


def list_filters(
    contact: Annotated[ContactKey | None, Query(description="'user:<uid>' or 'name:<name>', as in balances")] = None,
    status_: Annotated[Literal["open", "settled", "applied", "voided"] | None, Query(alias="status")] = None,
    currency: CurrencyQuery = None,
    date_from: Annotated[date | None, Query(alias="from", description="occurred_on on or after")] = None,
    date_to: Annotated[date | None, Query(alias="to", description="occurred_on on or before")] = None,
    kind: Annotated[Literal["entry", "settlement"] | None, Query()] = None,
) -> service.ListFilters:
    return service.ListFilters(contact=contact, status=status_, currency=currency, date_from=date_from, date_to=date_to, kind=kind)


Filters = Annotated[service.ListFilters, Depends(list_filters)]


def _degraded(response: Response, partial: bool) -> None:
    if partial:
        response.headers[DEGRADED_HEADER] = "friends-unavailable"


@router.post("/entries", response_model=Entry, status_code=status.HTTP_201_CREATED, summary="Record an IOU")
async def create_entry(body: EntryCreate, user: CurrentUser, idem: IdempotencyKey, request: Request) -> JSONResponse:
    return await idem.run(body, lambda: service.create_entry(deps(request), user, body), status_code=201)


@router.get("/entries", response_model=Page[Entry], summary="List entries (own and friends' shared), newest first")
async def list_entries(user: CurrentUser, page: Pagination, filters: Filters, request: Request, response: Response) -> dict:
    result, partial = await service.list_entries(deps(request), user, filters, page)
    _degraded(response, partial)
    return result


@router.get("/entries/{entry_id}", response_model=EntryDetail, summary="One entry (with its settlements)")
async def get_entry(entry_id: EntryIdPath, user: CurrentUser, request: Request) -> dict:
    return await service.get_entry(deps(request), user, entry_id)


@router.patch("/entries/{entry_id}", response_model=Entry, summary="Change an entry you recorded (only the fields sent)")
async def patch_entry(entry_id: EntryIdPath, body: EntryPatch, user: CurrentUser, request: Request) -> dict:
    return await service.update_entry(deps(request), user, entry_id, body)


@router.delete("/entries/{entry_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete an entry you recorded (and its settlements)")
async def delete_entry(entry_id: EntryIdPath, user: CurrentUser, request: Request) -> Response:
    await service.delete_entry(deps(request), user, entry_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/entries/{entry_id}/settle", response_model=SettleResult, status_code=status.HTTP_201_CREATED, summary="Settle fully or partly")
async def settle(
    entry_id: EntryIdPath, user: CurrentUser, idem: IdempotencyKey, request: Request,
    body: Annotated[SettleRequest | None, Body()] = None,
) -> JSONResponse:
    body = body or SettleRequest()
    return await idem.run(body, lambda: service.settle(deps(request), user, entry_id, body), status_code=201)


@router.post("/entries/{entry_id}/undo", response_model=SettleResult, summary="Undo a settlement (it stays, voided)")
async def undo(entry_id: EntryIdPath, user: CurrentUser, request: Request) -> dict:
    return await service.undo_settlement(deps(request), user, entry_id)


@router.post("/entries/{entry_id}/dispute", response_model=Entry, summary="Object to a friend's entry about you")
async def dispute(entry_id: EntryIdPath, body: DisputeRequest, user: CurrentUser, request: Request) -> dict:
    return await service.dispute(deps(request), user, entry_id, body)


@router.delete("/entries/{entry_id}/dispute", response_model=Entry, summary="Withdraw your objection")
async def withdraw_dispute(entry_id: EntryIdPath, user: CurrentUser, request: Request) -> dict:
    return await service.dispute(deps(request), user, entry_id, None)


@router.get("/balances", response_model=Balances, summary="Net per contact and currency (never converted)")
async def balances(user: CurrentUser, request: Request) -> Response:
    result = await service.balances(deps(request), user)
    # Hundreds of rows, already in their final shape: serialised directly (orjson) rather
    # than re-validated against the response model, which documents the shape. (Rendering
    # the JSON in PostgreSQL instead measured slower, A/B in one process.)
    headers = {DEGRADED_HEADER: "friends-unavailable"} if result["partial"] else None
    return Response(orjson.dumps(result), media_type="application/json", headers=headers)


@router.get("/balances/{contact:path}", response_model=ContactBalance, summary="One contact: totals per currency and history")
async def contact_balance(
    contact: Annotated[ContactKey, Path(description="'user:<uid>' or 'name:<name>'")],
    user: CurrentUser, page: Pagination, request: Request, response: Response,
) -> dict:
    result = await service.contact_balance(deps(request), user, contact, page)
    _degraded(response, result["partial"])
    return result


@router.get(
    "/export.csv",
    summary="The ledger as CSV",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "RFC 4180 CSV, UTF-8"}},
)
async def export_csv(user: CurrentUser, filters: Filters, request: Request) -> StreamingResponse:
    chunks = await service.export_csv(deps(request), user, filters)
    return StreamingResponse(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="ledger.csv"'},
    )
