"""Fixtures of the auth service tests: auth and users as real processes on the session's
real PostgreSQL and Redis (from the eindr_common pytest plugin)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import psycopg
import pytest
import redis as redis_lib
from eindr_common.testing import auth_headers, new_uid


@pytest.fixture(scope="session")
def users_svc(start_service):
    return start_service("users", "eindr_users.app:create_app")


@pytest.fixture(scope="session")
def auth_svc(start_service, users_svc):
    return start_service("auth", "eindr_auth.app:create_app", env={"EINDR_USERS_URL": users_svc.url})


@pytest.fixture(scope="session")
def db(postgres_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session")
def rds(redis_url: str) -> Iterator[redis_lib.Redis]:
    client = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


def device(**kw) -> dict:
    return {"device_id": "dev-" + new_uid(), "platform": "android", **kw}


@pytest.fixture
def make_device() -> Callable[..., dict]:
    """A device body with a fresh client-generated device_id."""
    return device


@pytest.fixture
def session_for(auth_svc, http: httpx.Client) -> Callable[..., tuple[str, dict[str, str], dict]]:
    """Sign a fresh user in with one device; returns (uid, auth headers, session body)."""

    def _session(dev: dict | None = None, uid: str | None = None) -> tuple[str, dict[str, str], dict]:
        uid = uid or new_uid()
        headers = auth_headers(uid, "auth", claims={"email": f"{uid}@example.com", "name": "Test User"})
        r = http.post(
            auth_svc.url + "/v1/auth/session", json={"device": dev or device(push_token="fcm-" + uid)}, headers=headers
        )
        assert r.status_code == 200, r.text
        return uid, headers, r.json()

    return _session


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
