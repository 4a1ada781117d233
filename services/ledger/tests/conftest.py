"""Fixtures of the ledger tests: the real ledger and friends services as their own
processes, on the session's real PostgreSQL and Redis (eindr_common's pytest plugin)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import psycopg
import pytest
import redis as redis_lib
from eindr_common.localstack import free_port
from eindr_common.testing import auth_headers, new_uid


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
    return start_service("friends", "eindr_friends.app:create_app", env={"EINDR_FRIENDS_HASH_PEPPER": "test-pepper-0123456789abcdef0123456789"})


@pytest.fixture(scope="session")
def reminders_down_url() -> str:
    """A port nothing listens on: the reminders service is down."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="session")
def ledger_svc(start_service, friends_svc, reminders_down_url):
    return start_service(
        "ledger", "eindr_ledger.app:create_app",
        env={"EINDR_FRIENDS_URL": friends_svc.url, "EINDR_REMINDERS_URL": reminders_down_url, "EINDR_LEDGER_REMINDER_TIMEOUT_S": "1"},
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
def ledger(ledger_svc, http) -> Callable[[str | None], As]:
    """``ledger(uid)`` → calls as that user; ``ledger()`` a fresh user."""
    return lambda uid=None: As(ledger_svc.url, uid or new_uid(), "ledger", http)


@pytest.fixture
def friends(friends_svc, http) -> Callable[[str | None], As]:
    return lambda uid=None: As(friends_svc.url, uid or new_uid(), "friends", http)


@pytest.fixture
def befriend(friends) -> Callable[..., None]:
    """Makes two users friends; ``a_tier``/``b_tier`` is what each grants the other."""

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


@pytest.fixture(scope="session", autouse=True)
def no_unhandled_errors_in_ledger_logs(eindr_tmp):
    """After the run: no ledger/friends process logged an unhandled exception (a 500)."""
    yield
    bad = []
    for log in sorted(eindr_tmp.glob("*.log")):
        if log.name.split("-")[0] in ("ledger", "friends"):
            bad += [f"{log.name}: {line[:200]} … {line[-500:]}" for line in log.read_text(errors="replace").splitlines() if "unhandled error" in line or "Traceback" in line]
    assert not bad, "\n".join(bad)


def entry_body(**kw) -> dict:
    body = {"counterparty_name": "Ali", "direction": "they_owe_me", "amount": "20.00", "currency": "USD"}
    body.update(kw)
    return body


@pytest.fixture
def new_entry(ledger) -> Callable[..., dict]:
    def _new(client: As, **kw) -> dict:
        r = client.post("/v1/ledger/entries", json=entry_body(**kw))
        assert r.status_code == 201, r.text
        return r.json()

    return _new


@pytest.fixture
def totals_match_entries(db) -> Callable[[str], None]:
    """Asserts that ledger.totals (trigger-maintained) equals the GROUP BY over the entries
    for this owner — the definition of a balance."""

    def _check(owner: str) -> None:
        by_totals = db.execute(
            "SELECT contact_key, currency, net_minor, entries FROM ledger.totals WHERE owner_id = %s AND entries > 0 ORDER BY 1, 2", (owner,)
        ).fetchall()
        by_group = db.execute(
            "SELECT contact_key, currency, sum(signed_minor), count(*) FROM ledger.entries WHERE owner_id = %s AND status <> 'voided' GROUP BY 1, 2 ORDER BY 1, 2",
            (owner,),
        ).fetchall()
        assert by_totals == by_group

    return _check
