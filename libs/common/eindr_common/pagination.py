"""Cursor pagination: ``?limit=&cursor=`` in, ``{items, next_cursor}`` out.

A cursor is an opaque, URL-safe encoding of the sort key of the last item served
(keyset pagination: stable under inserts, O(limit) per page at any depth).
"""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel

from .errors import BadRequest

T = TypeVar("T")

MAX_LIMIT = 200


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, default=str).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("cursor is not one this API issued", code="invalid_cursor", errors=[{"field": "cursor", "message": "malformed cursor"}]) from exc
    if not isinstance(values, list):
        raise BadRequest("cursor is not one this API issued", code="invalid_cursor", errors=[{"field": "cursor", "message": "malformed cursor"}])
    return values


class PageParams(BaseModel):
    limit: int
    after: list[Any] | None


async def _page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
) -> PageParams:
    return PageParams(limit=limit, after=decode_cursor(cursor) if cursor else None)


Pagination = Annotated[PageParams, Depends(_page_params)]
