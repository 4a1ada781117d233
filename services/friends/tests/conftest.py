"""Fixtures of the friends tests: the real friends service as its own process, on the
session's real PostgreSQL and Redis (eindr_common's pytest plugin)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import psycopg
import pytest
import redis as redis_lib
from eindr_common.events import stream_name
from eindr_common.testing import auth_headers, new_uid

PEPPER = "test-pepper-0123456789abcdef0123456789"


class As:
    """HTTP calls to one service as one user (a fresh internal token per call)."""

    def __init__(self, base_url: str, uid: str, audience: str, client: httpx.Client) -> None:
        self.base_url, self.uid, self.audience, self.client = base_url, uid, audience, client

    def __call__(self, method: str, path: str, **kw) -> httpx.Response:
        headers = {**auth_headers(self.uid, self.audience), **kw.pop("headers", {})}
        return self.client.request(method, self.base_url + path, headers=headers, **kw)

    def get(self, path: str, **kw) -> httpx.Response:
        return self("GET", path, **kw)

    def post(self, path: str, **kw) -> httpx.Response:
        return self("POST", path, **kw)

    def patch(self, path: str, **kw) -> httpx.Response:
        return self("PATCH", path, **kw)

    def put(self, path: str, **kw) -> httpx.Response:
        return self("PUT", path, **kw)

    def delete(self, path: str, **kw) -> httpx.Response:
        return self("DELETE", path, **kw)


@pytest.fixture(scope="session")
def friends_svc(start_service):
    return start_service(
        "friends", "eindr_friends.app:create_app",
        env={"EINDR_FRIENDS_HASH_PEPPER": PEPPER, "EINDR_FRIENDS_MATCH_DAILY_LIMIT": "6000"},
    )


@pytest.fixture(scope="session")
def db(postgres_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session")
def rds(redis_url: str) -> Iterator[redis_lib.Redis]:
    client = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def friends(friends_svc, http) -> Callable[..., As]:
    """``friends(uid)`` → calls as that user; ``friends()`` a fresh user; ``claims=``
    the verified sign-in claims the gateway would forward."""

    class WithClaims(As):
        def __init__(self, *a, claims=None, **kw):
            super().__init__(*a, **kw)
            self.claims = claims or {}

        def __call__(self, method, path, **kw):
            headers = {**auth_headers(self.uid, self.audience, claims=self.claims), **kw.pop("headers", {})}
            return self.client.request(method, self.base_url + path, headers=headers, **kw)

    return lambda uid=None, claims=None: WithClaims(friends_svc.url, uid or new_uid(), "friends", http, claims=claims)


@pytest.fixture
def befriend(friends) -> Callable[..., None]:
    def _befriend(a: str, b: str, a_tier: str = "basic", b_tier: str = "basic") -> None:
        r = friends(a).post("/v1/friends/invites", json={"user_id": b})
        assert r.status_code == 201, r.text
        r = friends(b).post(f"/v1/friends/invites/{r.json()['id']}/accept")
        assert r.status_code == 200, r.text
        for me, other, tier in ((a, b, a_tier), (b, a, b_tier)):
            if tier != "basic":
                r = friends(me).put(f"/v1/friends/{other}/permissions", json={"tier": tier})
                assert r.status_code == 200, r.text

    return _befriend


@pytest.fixture
def events_of(rds):
    """Events on the friends stream whose payload mentions ``uid``: [(type, payload)]."""

    def _events(uid: str, event_type: str | None = None) -> list[tuple[str, dict]]:
        out = []
        for _, fields in rds.xrange(stream_name("friends")):
            payload = json.loads(fields["payload"])
            if uid in json.dumps(payload) and (event_type is None or fields["type"] == event_type):
                out.append((fields["type"], payload))
        return out

    return _events


@pytest.fixture(scope="session", autouse=True)
def no_unhandled_errors_in_friends_logs(eindr_tmp):
    yield
    bad = []
    for log in sorted(eindr_tmp.glob("*.log")):
        if log.name.split("-")[0] in ("ledger", "friends"):
            bad += [f"{log.name}: {line[:200]} … {line[-500:]}" for line in log.read_text(errors="replace").splitlines() if "unhandled error" in line or "Traceback" in line]
    assert not bad, "\n".join(bad)
