"""Fixtures of the users service tests: the real service as its own process, on the
session's real PostgreSQL and Redis (from the eindr_common pytest plugin)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import psycopg
import pytest
import redis as redis_lib
from eindr_common.events import stream_name
from eindr_common.testing import auth_headers, new_uid


@pytest.fixture(scope="session")
def users_svc(start_service):
    return start_service("users", "eindr_users.app:create_app")


@pytest.fixture(scope="session")
def db(postgres_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session")
def rds(redis_url: str) -> Iterator[redis_lib.Redis]:
    client = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


def claims_for(uid: str) -> dict[str, str]:
    return {"email": f"{uid}@example.com", "name": f"Name {uid}", "phone_number": "+31600000000"}


@pytest.fixture
def make_user(users_svc, http: httpx.Client) -> Callable[..., tuple[str, dict[str, str]]]:
    """Provision a fresh user; returns (uid, headers for the users audience)."""

    def _make(hints: dict | None = None, claims: dict | None = None) -> tuple[str, dict[str, str]]:
        uid = new_uid()
        claims = claims if claims is not None else claims_for(uid)
        headers = auth_headers(uid, "users", claims=claims)
        r = http.post(users_svc.url + "/internal/users/provision", json=hints, headers=headers)
        assert r.status_code == 201, r.text
        return uid, headers

    return _make


def user_events(rds: redis_lib.Redis, uid: str, event_type: str | None = None) -> list[dict]:
    """Events about ``uid`` on the users stream, oldest first: [{type, payload}]."""
    out = []
    for _, fields in rds.xrange(stream_name("users")):
        payload = json.loads(fields["payload"])
        if payload.get("uid") == uid and (event_type is None or fields["type"] == event_type):
            out.append({"type": fields["type"], "payload": payload})
    return out


@pytest.fixture
def events_of(rds):
    return lambda uid, event_type=None: user_events(rds, uid, event_type)


@pytest.fixture(scope="session", autouse=True)
def no_unhandled_errors_in_service_logs(eindr_tmp):
    """After the run: no service process of ours logged an unhandled exception (a 500)."""
    yield
    bad = []
    for log in sorted(eindr_tmp.glob("*.log")):
        if log.name.split("-")[0] in ("users", "auth"):
            bad += [
                f"{log.name}: {line[:300]}"
                for line in log.read_text(errors="replace").splitlines()
                if "unhandled error" in line
            ]
    assert not bad, "\n".join(bad)
