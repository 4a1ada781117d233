"""eindr_common against real PostgreSQL and Redis: the app factory, errors, identity,
pagination, idempotency and migrations."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import pytest
from eindr_common.app import build_app
from eindr_common.errors import NotFound, Unauthorized
from eindr_common.idempotency import IdempotencyKey
from eindr_common.identity import (
    CurrentUser,
    Principal,
    mint_internal_token,
    verify_internal_token,
)
from eindr_common.pagination import Pagination, decode_cursor, encode_cursor
from eindr_common.settings import CommonSettings
from eindr_common.testing import TEST_SECRET, auth_headers
from fastapi import APIRouter
from pydantic import BaseModel, Field


class Thing(BaseModel):
    name: str = Field(min_length=1, max_length=10)


def make_app(redis_url: str):
    settings = CommonSettings(env="test", internal_token_secret=TEST_SECRET, redis_url=redis_url)
    app = build_app("things", settings=settings, redis=True)
    router = APIRouter()
    counter = {"n": 0}

    @router.post("/things")
    async def create(body: Thing, user: CurrentUser, idem: IdempotencyKey):
        async def produce():
            counter["n"] += 1
            return {"n": counter["n"], "name": body.name, "uid": user.uid}

        return await idem.run(body, produce)

    @router.get("/things/{thing_id}")
    async def get(thing_id: int, user: CurrentUser):
        raise NotFound(f"thing {thing_id} does not exist", code="thing_not_found")

    @router.get("/boom")
    async def boom():
        raise RuntimeError("secret stack detail")

    @router.get("/page")
    async def page(p: Pagination):
        return {"limit": p.limit, "after": p.after}

    app.include_router(router)
    return app


@pytest.fixture
async def client(redis_url):
    app = make_app(redis_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            yield c


async def test_missing_and_foreign_internal_tokens_are_401(client):
    r = await client.get("/things/1")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "missing_internal_token"
    r = await client.get("/things/1", headers=auth_headers("alice", "users"))
    assert r.status_code == 401 and r.json()["code"] == "invalid_internal_token"
    r = await client.get("/things/1", headers=auth_headers("alice", "things"))
    assert r.status_code == 404
    body = r.json()
    assert body == {
        "type": "https://docs.eindr.app/problems/thing_not_found",
        "title": "Not Found",
        "status": 404,
        "detail": "thing 1 does not exist",
        "instance": "/things/1",
        "code": "thing_not_found",
    }


async def test_validation_is_400_with_field_errors(client):
    r = await client.post("/things", json={"name": ""}, headers=auth_headers("alice", "things"))
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == "validation_error"
    assert body["errors"][0]["field"] == "name"
    r = await client.get("/things/abc", headers=auth_headers("alice", "things"))
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "thing_id"


async def test_unexpected_error_is_500_problem_without_trace(client):
    r = await client.get("/boom")
    assert r.status_code == 500
    assert "secret stack detail" not in r.text
    assert r.json()["code"] == "internal_error"


async def test_idempotency_replays_and_rejects_reuse(client):
    h = {**auth_headers("alice", "things"), "Idempotency-Key": "k-1"}
    first = await client.post("/things", json={"name": "a"}, headers=h)
    again = await client.post("/things", json={"name": "a"}, headers=h)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers["idempotent-replayed"] == "true"
    other = await client.post("/things", json={"name": "b"}, headers=h)
    assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"
    # Another user with the same key is a different request.
    bob = await client.post("/things", json={"name": "a"}, headers={**auth_headers("bob", "things"), "Idempotency-Key": "k-1"})
    assert bob.json()["uid"] == "bob" and bob.json()["n"] != first.json()["n"]


async def test_health_ready_metrics_and_request_id(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["redis"] == "ok"
    r = await client.get("/things/1", headers={**auth_headers("a", "things"), "x-request-id": "abc123"})
    assert r.headers["x-request-id"] == "abc123"
    metrics = (await client.get("/metrics")).text
    assert 'eindr_http_requests_total{method="GET",route="/things/{thing_id}",service="things",status="404"}' in metrics


async def test_pagination_cursor_roundtrip_and_garbage(client):
    cursor = encode_cursor(["2026-01-01T00:00:00+00:00", "id-1"])
    assert decode_cursor(cursor) == ["2026-01-01T00:00:00+00:00", "id-1"]
    r = await client.get("/page", params={"cursor": "!!!not-a-cursor", "limit": 5})
    assert r.status_code == 400 and r.json()["code"] == "invalid_cursor"
    r = await client.get("/page", params={"limit": 0})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "limit"


def test_internal_token_lifetime_and_audience():
    token = mint_internal_token(Principal(uid="a", roles=("admin",)), "users", TEST_SECRET, ttl_s=600)
    p = verify_internal_token(token, "users", TEST_SECRET)
    assert p.uid == "a" and p.is_admin
    old = mint_internal_token(Principal(uid="a"), "users", TEST_SECRET, now=0)
    with pytest.raises(Unauthorized):
        verify_internal_token(old, "users", TEST_SECRET)


def test_internal_token_secret_rotation_accepts_listed_secrets_only():
    old_secret, new_secret, stranger = "o" * 40, "n" * 40, "s" * 40
    signed_old = mint_internal_token(Principal(uid="a"), "users", old_secret)
    signed_new = mint_internal_token(Principal(uid="a"), "users", new_secret)
    # Phase 1 (verify new, still sign old) and phase 2 (sign new, still verify old).
    assert verify_internal_token(signed_new, "users", old_secret, accepted=[new_secret]).uid == "a"
    assert verify_internal_token(signed_old, "users", new_secret, accepted=[old_secret]).uid == "a"
    with pytest.raises(Unauthorized):  # phase 3: the old secret is gone
        verify_internal_token(signed_old, "users", new_secret)
    with pytest.raises(Unauthorized):
        verify_internal_token(mint_internal_token(Principal(uid="a"), "users", stranger), "users", new_secret, accepted=[old_secret])
    # A right signature for the wrong service is refused for that, not retried.
    with pytest.raises(Unauthorized) as refused:
        verify_internal_token(signed_new, "notes", old_secret, accepted=[new_secret])
    assert "another service" in refused.value.detail
    with pytest.raises(ValueError):
        CommonSettings(env="production", internal_token_secret=new_secret, internal_token_accepted_secrets=["short"])


def test_settings_refuse_default_secret_outside_development():
    with pytest.raises(ValueError):
        CommonSettings(env="production")
    assert CommonSettings(env="development").env == "development"


def test_migrations_create_schema_and_version_table(postgres_url, tmp_path: Path):
    import psycopg
    from eindr_common.migrations import upgrade

    mig = tmp_path / "migrations"
    (mig / "versions").mkdir(parents=True)
    (mig / "env.py").write_text("from eindr_common.migrations import run_env\nrun_env(schema='sample')\n")
    (mig / "versions" / "0001_init.py").write_text(
        "revision = '0001'\ndown_revision = None\nfrom alembic import op\n"
        "def upgrade():\n    op.execute('CREATE TABLE sample.items (id uuid PRIMARY KEY)')\n"
        "def downgrade():\n    op.execute('DROP TABLE sample.items')\n"
    )
    upgrade(mig, postgres_url)
    upgrade(mig, postgres_url)  # idempotent
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT version_num FROM sample.alembic_version").fetchone()[0] == "0001"
        assert conn.execute("SELECT count(*) FROM sample.items").fetchone()[0] == 0


async def test_unknown_keys_are_not_reflected_raw(client):
    from eindr_common.errors import _field_name

    name = _field_name(("body", "\u0000" * 1000))
    assert len(name) <= 65 and "\u0000" not in name


async def test_consumer_reclaims_entries_a_dead_consumer_left_pending(redis_url):

    import redis.asyncio as aioredis
    from eindr_common import events

    redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
    stream = events.stream_name("reclaim-test")
    await events.ensure_group(redis, stream, "g")
    await events.publish(redis, "reclaim-test", "thing.happened", {"n": 1})
    # A consumer reads the entry and dies before acknowledging it.
    await redis.xreadgroup("g", "dead-consumer", {stream: ">"}, count=10)
    seen = []
    stop = asyncio.Event()

    async def handler(event_type, payload):
        seen.append((event_type, payload))
        stop.set()

    await asyncio.wait_for(
        events.consume(redis, [stream], "g", "live-consumer", handler, block_ms=50, stop=stop, reclaim_idle_ms=100), 10
    )
    assert seen == [("thing.happened", {"n": 1})]
    assert (await redis.xpending(stream, "g"))["pending"] == 0
    await redis.aclose()


async def test_local_postgres_carries_many_pools_and_each_names_its_component(postgres_url):
    """Every component's pool (and every service a test process starts) shares the local
    server: its connection ceiling is raised above initdb's 100, and each pool names its
    component in pg_stat_activity."""
    import psycopg
    from eindr_common.db import create_pool
    from eindr_common.localstack import LOCAL_MAX_CONNECTIONS

    pools = [await create_pool(postgres_url, min_size=2, max_size=2, application_name=f"eindr-pool-{i}") for i in range(3)]
    try:
        with psycopg.connect(postgres_url) as conn:
            if not os.environ.get("EINDR_TEST_DATABASE_URL"):  # a server of our own, not one given
                assert int(conn.execute("SHOW max_connections").fetchone()[0]) >= LOCAL_MAX_CONNECTIONS
            names = conn.execute(
                "SELECT application_name, count(*) FROM pg_stat_activity "
                "WHERE application_name LIKE 'eindr-pool-%' GROUP BY 1 ORDER BY 1"
            ).fetchall()
        assert names == [(f"eindr-pool-{i}", 2) for i in range(3)]
    finally:
        for pool in pools:
            await pool.close()
