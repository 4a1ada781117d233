"""Fixtures for the reminders tests: the real API process on real PostgreSQL and Redis,
and helpers to run real worker processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
from eindr_common.localstack import free_port, python_env, wait_http
from eindr_common.testing import auth_headers, new_uid

APP = "eindr_reminders.app:create_app"


@pytest.fixture(scope="session")
def friends_svc(start_service):
    """The real friends service: who shares what with whom, who trusts whom."""
    return start_service(
        "friends",
        "eindr_friends.app:create_app",
        env={"EINDR_FRIENDS_HASH_PEPPER": "reminders-test-pepper-0123456789abcdef"},
    )


@pytest.fixture(scope="session")
def reminders_api(start_service, friends_svc):
    # users/auth are pointed at a closed port (9, discard: never served here): the service
    # must degrade (UTC, sse only).
    dead = "http://127.0.0.1:9"
    return start_service(
        "reminders", APP, env={"EINDR_USERS_URL": dead, "EINDR_AUTH_URL": dead, "EINDR_FRIENDS_URL": friends_svc.url}
    )


class Friends:
    """The real friends service, driven as its users would."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def _h(self, uid: str) -> dict[str, str]:
        return auth_headers(uid, "friends")

    def befriend(self, a: str, b: str) -> None:
        r = self.client.post("/v1/friends/invites", json={"user_id": b}, headers=self._h(a))
        assert r.status_code == 201, r.text
        r = self.client.post(f"/v1/friends/invites/{r.json()['id']}/accept", headers=self._h(b))
        assert r.status_code == 200, r.text

    def share(self, owner: str, friend: str, reminder_id: str, access: str = "view") -> str:
        body = {"friend_id": friend, "item_type": "reminder", "item_id": reminder_id, "access": access}
        r = self.client.post("/v1/friends/shares", json=body, headers=self._h(owner))
        assert r.status_code in (200, 201), r.text
        return r.json()["id"]

    def set_access(self, owner: str, share_id: str, access: str) -> None:
        r = self.client.patch(f"/v1/friends/shares/{share_id}", json={"access": access}, headers=self._h(owner))
        assert r.status_code == 200, r.text

    def revoke(self, owner: str, share_id: str) -> None:
        assert self.client.delete(f"/v1/friends/shares/{share_id}", headers=self._h(owner)).status_code == 204

    def set_tier(self, owner: str, friend: str, tier: str) -> None:
        r = self.client.put(f"/v1/friends/{friend}/permissions", json={"tier": tier}, headers=self._h(owner))
        assert r.status_code == 200, r.text

    def unfriend(self, a: str, b: str) -> None:
        assert self.client.delete(f"/v1/friends/{b}", headers=self._h(a)).status_code == 204

    def block(self, a: str, b: str) -> None:
        r = self.client.post("/v1/friends/blocks", json={"user_id": b}, headers=self._h(a))
        assert r.status_code == 201, r.text


@pytest.fixture
def friends(friends_svc) -> Iterator[Friends]:
    with httpx.Client(base_url=friends_svc.url, timeout=30) as client:
        yield Friends(client)


@pytest.fixture
def api(reminders_api) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=reminders_api.url, timeout=30) as client:
        yield client


@pytest.fixture
def alice() -> dict[str, str]:
    return auth_headers(new_uid(), "reminders")


def headers_for(uid: str) -> dict[str, str]:
    return auth_headers(uid, "reminders")


@dataclass
class WorkerProcess:
    env: dict[str, str]
    log_path: Path
    metrics_port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        env = {**self.env, "EINDR_REMINDERS_WORKER_METRICS_PORT": str(self.metrics_port), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "eindr_reminders.worker"],
            env=python_env(env),
            stdout=open(self.log_path, "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
        wait_http(f"http://127.0.0.1:{self.metrics_port}/metrics", 60, self.proc)
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def db(postgres_url):
    """Autocommit connection for assertions on the reminders tables."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def start_worker_module(service_env, eindr_tmp, reminders_api):
    started = []

    def _start(env=None, worker_id=None):
        # Port 9 (discard) is never served here; a free_port() left unbound can be taken
        # by another test's process and then answer slowly instead of refusing at once.
        dead = "http://127.0.0.1:9"
        w = WorkerProcess(
            env={
                **service_env,
                "EINDR_USERS_URL": dead,
                "EINDR_AUTH_URL": dead,
                "EINDR_REMINDERS_POLL_S": "0.2",
                **({"EINDR_REMINDERS_WORKER_ID": worker_id} if worker_id else {}),
                **(env or {}),
            },
            log_path=eindr_tmp / f"worker-{uuid.uuid4().hex[:6]}.log",
        )
        started.append(w)
        return w.start()

    yield _start
    for w in started:
        w.stop()


def wait_for(
    predicate, timeout_s: float = 60, interval_s: float = 0.2, message: str = "condition", log: Path | None = None
):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval_s)
    tail = ("\n" + log.read_text(errors="replace")[-4000:]) if log and log.exists() else ""
    raise AssertionError(f"{message} not reached within {timeout_s}s (last: {last!r}){tail}")


@pytest.fixture(scope="session", autouse=True)
def no_errors_in_reminders_logs(eindr_tmp):
    """After the run: no reminders API or worker process logged an unhandled error."""
    yield
    bad = []
    for log in sorted(eindr_tmp.glob("*.log")):
        if log.name.startswith(("reminders", "worker-")):
            bad += [
                f"{log.name}: {line[:300]}"
                for line in log.read_text(errors="replace").splitlines()
                if "unhandled error" in line or '"level": "error"' in line
            ]
    assert not bad, "\n".join(bad)
