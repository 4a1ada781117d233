"""pytest plugin (entry point ``eindr``): real PostgreSQL, real Redis and real service
processes for every component's tests. Loaded automatically once eindr-common is installed."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from .identity import Principal, mint_internal_token
from .localstack import free_port, python_env, start_postgres, start_redis, wait_http

TEST_SECRET = "test-internal-token-secret-0123456789abcdef"

# pgserver logs from an atexit hook, after pytest has closed the captured stdout.
logging.getLogger("pgserver").disabled = True


@pytest.fixture(scope="session")
def eindr_tmp() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="eindr-test-") as tmp:
        yield Path(tmp)


@pytest.fixture(scope="session")
def postgres_url(eindr_tmp: Path) -> Iterator[str]:
    """A PostgreSQL 16 + pgvector database, started for this test process."""
    if os.environ.get("EINDR_TEST_DATABASE_URL"):
        yield os.environ["EINDR_TEST_DATABASE_URL"]
        return
    server, url = start_postgres(eindr_tmp / "pg")
    yield url
    server.cleanup()


@pytest.fixture(scope="session")
def redis_url(eindr_tmp: Path) -> Iterator[str]:
    if os.environ.get("EINDR_TEST_REDIS_URL"):
        yield os.environ["EINDR_TEST_REDIS_URL"]
        return
    proc, url = start_redis(eindr_tmp / "redis")
    yield url
    proc.terminate()
    proc.wait(5)


@dataclass
class ServiceProcess:
    """A component running as its own uvicorn process on a free port."""

    name: str
    app: str
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60) -> ServiceProcess:
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115 (the child writes to it)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", self.app, "--factory", "--host", "127.0.0.1", "--port", str(self.port),
             "--no-access-log", "--log-level", "warning"],
            env=python_env(self.env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_http(self.url + "/healthz", timeout_s, self.proc)
        except RuntimeError:
            self.stop()
            tail = self.log_path.read_text()[-3000:] if self.log_path and self.log_path.exists() else ""
            raise RuntimeError(f"{self.name} failed to start:\n{tail}")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="session")
def service_env(postgres_url: str, redis_url: str) -> dict[str, str]:
    """Environment every service process of a test run shares."""
    return {
        "EINDR_ENV": "test",
        "EINDR_DATABASE_URL": postgres_url,
        "EINDR_REDIS_URL": redis_url,
        "EINDR_INTERNAL_TOKEN_SECRET": TEST_SECRET,
        "EINDR_MIGRATE_ON_START": "true",
        "EINDR_LOG_LEVEL": "INFO",
    }


@pytest.fixture(scope="session")
def start_service(eindr_tmp: Path, service_env: dict[str, str]) -> Iterator:
    started: list[ServiceProcess] = []

    def _start(name: str, app: str, env: dict[str, str] | None = None, port: int | None = None) -> ServiceProcess:
        svc = ServiceProcess(name=name, app=app, env={**service_env, **(env or {})}, log_path=eindr_tmp / f"{name}-{uuid.uuid4().hex[:6]}.log")
        if port:
            svc.port = port
        started.append(svc)
        return svc.start()

    yield _start
    for svc in reversed(started):
        svc.stop()


def internal_token(uid: str, audience: str, *, plan: str = "free", roles: tuple[str, ...] = (), claims: dict | None = None) -> str:
    return mint_internal_token(Principal(uid=uid, plan=plan, roles=roles, claims=claims or {}), audience, TEST_SECRET)


def auth_headers(uid: str, audience: str, **kw) -> dict[str, str]:
    return {"authorization": "Bearer " + internal_token(uid, audience, **kw)}


def new_uid() -> str:
    return "u" + uuid.uuid4().hex[:20]


def eventually(check, timeout_s: float = 30.0, interval_s: float = 0.05):
    """Poll ``check`` until it returns something truthy; returns its last value. What another
    process does reaches us a little later, not in the same instant; the deadline only
    guards against a hang (no test asserts on timing)."""
    give_up = time.monotonic() + timeout_s
    while True:
        result = check()
        if result or time.monotonic() > give_up:
            return result
        time.sleep(interval_s)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


@dataclass
class RadicaleServer:
    """A real CalDAV server (PyPI ``radicale``, htpasswd auth) in its own folder, for the
    suites that sync calendars (several may run on one pytest worker). Accounts are
    ``userNN`` with password ``pw-userNN`` until a test changes one."""

    root: Path
    accounts: int = 60
    url: str = ""
    proc: subprocess.Popen | None = None
    passwords: dict[str, str] = field(default_factory=dict)
    used: int = 0

    @property
    def users_file(self) -> Path:
        return self.root / "users"

    def start(self, timeout_s: float = 60) -> RadicaleServer:
        self.passwords = {f"user{i:02d}": f"pw-user{i:02d}" for i in range(self.accounts)}
        self._write_users()
        port = free_port()
        (self.root / "config").write_text(
            f"[server]\nhosts = 127.0.0.1:{port}\nmax_content_length = 100000000\n"
            f"[auth]\ntype = htpasswd\nhtpasswd_filename = {self.users_file}\nhtpasswd_encryption = plain\n"
            f"[storage]\nfilesystem_folder = {self.root / 'collections'}\n[logging]\nlevel = warning\n"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "radicale", "--config", str(self.root / "config")],
            stdout=open(self.root / "radicale.log", "ab"),  # noqa: SIM115 (the child writes to it)
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{port}/"
        wait_http(self.url, timeout_s, self.proc)
        return self

    def new_account(self) -> tuple[str, str]:
        user = f"user{self.used:02d}"
        if user not in self.passwords:
            raise RuntimeError(f"all {self.accounts} Radicale accounts are in use")
        self.used += 1
        return user, self.passwords[user]

    def change_password(self, user: str, password: str) -> None:
        """What a user does on their provider's site: the password Eindr holds stops working."""
        self.passwords[user] = password
        self._write_users()

    def _write_users(self) -> None:
        self.users_file.write_text("".join(f"{u}:{p}\n" for u, p in self.passwords.items()))

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
