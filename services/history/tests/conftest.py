"""Fixtures of the history tests: the real history API and worker processes, the real
embedding server (all-MiniLM-L6-v2), and — for account deletion, retention preferences and
accepting suggestions — the real users and reminders services."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import httpx
import psycopg
import pytest
from eindr_common.localstack import free_port
from eindr_common.testing import ServiceProcess, auth_headers, new_uid


@pytest.fixture(scope="session")
def intent_url(eindr_tmp: Path) -> Iterator[str]:
    svc = ServiceProcess(name="history-intent", app="eindr_intent.app:create_app", env={"EINDR_LOG_LEVEL": "WARNING"},
                         log_path=eindr_tmp / "history-intent.log")
    svc.start(timeout_s=240)
    yield svc.url
    svc.stop()


@pytest.fixture(scope="session")
def users_svc(start_service):
    return start_service("users", "eindr_users.app:create_app")


@pytest.fixture(scope="session")
def reminders_svc(start_service, users_svc):
    dead = f"http://127.0.0.1:{free_port()}"
    return start_service("reminders", "eindr_reminders.app:create_app", env={"EINDR_USERS_URL": users_svc.url, "EINDR_AUTH_URL": dead})


@pytest.fixture(scope="session")
def history_env(intent_url: str, reminders_svc) -> dict[str, str]:
    return {
        "EINDR_INTENT_URL": intent_url,
        "EINDR_REMINDERS_URL": reminders_svc.url,
        "EINDR_HISTORY_EMBED_INTERVAL_S": "0.2",
        "EINDR_HISTORY_RETENTION_INTERVAL_S": "1",
        "EINDR_HISTORY_HABITS_INTERVAL_S": "1",
    }


@pytest.fixture(scope="session")
def history_api(start_service, history_env) -> ServiceProcess:
    return start_service("history", "eindr_history.app:create_app", env=history_env)


@pytest.fixture(scope="session")
def history_worker(start_service, history_env, history_api) -> ServiceProcess:
    return start_service("history-worker", "eindr_history.worker:create_app", env=history_env)


@pytest.fixture(scope="session")
def rds(redis_url: str):
    import redis as redis_lib

    client = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture(scope="session")
def db(postgres_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        yield conn


class FreshAuth(Mapping):
    """Headers whose internal token is minted anew each time a request reads them (the
    tokens live 60 s; some tests wait longer than that on background jobs)."""

    def __init__(self, uid: str, audience: str) -> None:
        self.uid, self.audience = uid, audience

    def _headers(self) -> dict[str, str]:
        return auth_headers(self.uid, self.audience)

    def __getitem__(self, key: str) -> str:
        return self._headers()[key]

    def __iter__(self):
        return iter(self._headers())

    def __len__(self) -> int:
        return 1


@pytest.fixture
def user() -> tuple[str, Mapping[str, str]]:
    uid = new_uid()
    return uid, FreshAuth(uid, "history")


@pytest.fixture
def other_user() -> tuple[str, Mapping[str, str]]:
    uid = new_uid()
    return uid, FreshAuth(uid, "history")


def wait_for(fetch: Callable[[], object], done: Callable[[object], bool], timeout_s: float = 120) -> object:
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = fetch()
        if done(last):
            return last
        time.sleep(0.25)
    raise AssertionError(f"condition not reached; last state: {last}")


@pytest.fixture
def poll():
    return wait_for


@pytest.fixture(scope="session")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60) as c:
        yield c


@pytest.fixture(scope="session", autouse=True)
def no_unhandled_errors_in_service_logs(eindr_tmp: Path):
    """After the run: no history process logged an unhandled exception."""
    yield
    bad = []
    for log in sorted(eindr_tmp.glob("history*.log")):
        bad += [line for line in log.read_text(errors="replace").splitlines() if "unhandled error" in line or "Traceback" in line]
    assert not bad, f"{len(bad)} errors logged; the first:\n" + bad[0][-3000:].replace("\\n", "\n")
