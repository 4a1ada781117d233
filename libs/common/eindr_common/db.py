"""PostgreSQL access: an asyncpg pool with pgvector's codec on every connection."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

import asyncpg
from fastapi import Depends, Request
from pgvector.asyncpg import register_vector

from .errors import ServiceUnavailable


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    try:
        await register_vector(conn)
    except ValueError:
        # The vector extension is created by the first migration that needs it; services
        # without vector columns work without it.
        pass


async def create_pool(
    dsn: str, *, min_size: int = 1, max_size: int = 10, application_name: str | None = None
) -> asyncpg.Pool:
    # application_name shows in pg_stat_activity which component holds which connections.
    server_settings = {"application_name": application_name} if application_name else None
    return await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        command_timeout=30,
        server_settings=server_settings,
    )


async def _connection(request: Request) -> AsyncIterator[asyncpg.Connection]:
    pool: asyncpg.Pool = request.app.state.pool
    try:
        conn = await pool.acquire(timeout=5)
    except (OSError, asyncpg.PostgresConnectionError, TimeoutError) as exc:
        raise ServiceUnavailable("The database is not reachable", code="database_unavailable") from exc
    try:
        yield conn
    finally:
        await pool.release(conn)


DbConn = Annotated[asyncpg.Connection, Depends(_connection)]


async def get_pool(request: Request) -> asyncpg.Pool:
    return request.app.state.pool


DbPool = Annotated[asyncpg.Pool, Depends(get_pool)]
