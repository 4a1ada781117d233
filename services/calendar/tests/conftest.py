"""Fixtures of the calendar tests: real processes on the session's real PostgreSQL and
Redis — the calendar API, its sync worker, the reminders service, a real Radicale CalDAV
server, and a local server speaking Google's OAuth + Calendar v3 wire format."""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import caldav
import httpx
import psycopg
import pytest
import redis as redis_lib
from cryptography.fernet import Fernet
from eindr_calendar.settings import DEV_ENCRYPTION_KEY
from eindr_common.localstack import free_port, python_env, wait_http
from eindr_common.testing import RadicaleServer, auth_headers, new_uid

TESTS = Path(__file__).resolve().parent
ENCRYPTION_KEY = Fernet.generate_key().decode()
GOOGLE_CLIENT_ID = "eindr-test.apps.googleusercontent.com"
REDIRECT_URI = "app.eindr.test:/oauth2/google"


# ------------------------------------------------------------------ events the tests write

def future(hours: int = 48) -> datetime:
    """A whole minute ``hours`` from now (calendars keep seconds; reminders compare minutes)."""
    return (datetime.now(UTC) + timedelta(hours=hours)).replace(microsecond=0, second=0)


def ics(uid: str, summary: str, start: datetime, *, alarm: str | None = "-PT15M", rrule: str | None = None,
        last_modified: datetime | None = None, extra: str = "") -> str:
    """One VEVENT in a VCALENDAR, 30 minutes long, with a display alarm unless ``alarm`` is None."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", "BEGIN:VEVENT", f"UID:{uid}",
             f"DTSTAMP:{datetime.now(UTC):%Y%m%dT%H%M%SZ}", f"DTSTART:{start:%Y%m%dT%H%M%SZ}", "DURATION:PT30M",
             f"SUMMARY:{summary}"]
    if last_modified:
        lines.append(f"LAST-MODIFIED:{last_modified:%Y%m%dT%H%M%SZ}")
    if rrule:
        lines.append(f"RRULE:{rrule}")
    if extra:
        lines.append(extra)
    if alarm:
        lines += ["BEGIN:VALARM", "ACTION:DISPLAY", "DESCRIPTION:x", f"TRIGGER:{alarm}", "END:VALARM"]
    lines += ["END:VEVENT", "END:VCALENDAR", ""]
    return "\r\n".join(lines)


# ------------------------------------------------------------------ Radicale (a real CalDAV server)

@pytest.fixture(scope="session")
def radicale(eindr_tmp: Path) -> Iterator[RadicaleServer]:
    server = RadicaleServer(Path(tempfile.mkdtemp(prefix="radicale-", dir=eindr_tmp)), accounts=60).start()
    yield server
    server.stop()


@dataclass
class DavUser:
    """A Radicale account with one fresh calendar, driven through the caldav library (the
    "user" editing their calendar in another app)."""

    username: str
    password: str
    client: caldav.DAVClient
    calendar: caldav.Calendar

    def add(self, ics: str):
        return self.calendar.add_event(ics)

    def events(self) -> list:
        return list(self.calendar.events())

    def by_uid(self, uid: str):
        return self.calendar.event_by_uid(uid)


@pytest.fixture
def dav_user(radicale: RadicaleServer) -> DavUser:
    username, password = radicale.new_account()
    client = caldav.DAVClient(url=radicale.url, username=username, password=password)
    cal = client.principal().make_calendar(name="Personal")
    return DavUser(username, password, client, cal)


# ------------------------------------------------------------------ processes

@pytest.fixture(scope="session")
def google_fake(start_service):
    return start_service("googlefake", "google_fake:create_app", env={"PYTHONPATH": str(TESTS)})


@pytest.fixture(scope="session")
def reminders_svc(start_service):
    dead = f"http://127.0.0.1:{free_port()}"
    return start_service("reminders", "eindr_reminders.app:create_app", env={"EINDR_USERS_URL": dead, "EINDR_AUTH_URL": dead})


@pytest.fixture(scope="session")
def calendar_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def calendar_env(reminders_svc, google_fake, calendar_port) -> dict[str, str]:
    return {
        "EINDR_REMINDERS_URL": reminders_svc.url,
        # The development key second (decrypt only): the assistant suite's calendar service
        # may share this pytest worker's database and queue, and encrypts with it.
        "EINDR_CALENDAR_ENCRYPTION_KEYS": f"{ENCRYPTION_KEY},{DEV_ENCRYPTION_KEY}",
        "EINDR_CALENDAR_GOOGLE_CLIENT_ID": GOOGLE_CLIENT_ID,
        "EINDR_CALENDAR_GOOGLE_CLIENT_SECRET": "test-secret",
        "EINDR_CALENDAR_GOOGLE_REDIRECT_URI": REDIRECT_URI,
        "EINDR_CALENDAR_GOOGLE_AUTH_URL": google_fake.url + "/o/oauth2/v2/auth",
        "EINDR_CALENDAR_GOOGLE_TOKEN_URL": google_fake.url + "/token",
        "EINDR_CALENDAR_GOOGLE_API_BASE": google_fake.url + "/",
        "EINDR_CALENDAR_WEBHOOK_URL": f"http://127.0.0.1:{calendar_port}/v1/calendar/webhooks/google",
        "EINDR_CALENDAR_BACKOFF_BASE_S": "5",
        "EINDR_CALENDAR_HTTP_TIMEOUT_S": "30",
    }


@pytest.fixture(scope="session")
def calendar_svc(start_service, calendar_env, calendar_port):
    return start_service("calendar", "eindr_calendar.app:create_app", env=calendar_env, port=calendar_port)


@dataclass
class WorkerProcess:
    env: dict[str, str]
    log_path: Path
    metrics_port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        env = {**self.env, "EINDR_CALENDAR_WORKER_METRICS_PORT": str(self.metrics_port),
               "EINDR_CALENDAR_CONSUMER_NAME": "test-worker"}
        self.proc = subprocess.Popen([sys.executable, "-m", "eindr_calendar.worker"], env=python_env(env),
                                     stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115
        wait_http(f"http://127.0.0.1:{self.metrics_port}/healthz", 60, self.proc)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="session")
def _worker_holder(service_env, calendar_env, calendar_svc, eindr_tmp) -> Iterator[list[WorkerProcess]]:
    holder: list[WorkerProcess] = []
    yield holder
    for worker in holder:
        worker.stop()


@pytest.fixture
def calendar_worker(_worker_holder, service_env, calendar_env, eindr_tmp) -> WorkerProcess:
    """The sync worker process, shared by the tests that need it; started again if
    something outside this test run ended it (a shared machine)."""
    if not _worker_holder or _worker_holder[-1].proc is None or _worker_holder[-1].proc.poll() is not None:
        _worker_holder.append(WorkerProcess(env={**service_env, **calendar_env}, log_path=eindr_tmp / "calendar-worker.log").start())
    return _worker_holder[-1]


# ------------------------------------------------------------------ clients and helpers

@pytest.fixture(scope="session")
def db(postgres_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session")
def rds(redis_url: str) -> Iterator[redis_lib.Redis]:
    client = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@dataclass
class User:
    uid: str
    cal: httpx.Client  # calendar API as this user
    rem: httpx.Client  # reminders API as this user

    def reminders(self) -> list[dict]:
        r = self.rem.get("/v1/reminders", params={"limit": 200})
        assert r.status_code == 200, r.text
        return r.json()["items"]

    def sync(self, connection_id: str) -> dict:
        """A manual sync run of one of this user's connections; returns the run."""
        r = self.cal.post(f"/v1/calendar/connections/{connection_id}/sync")
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture
def make_user(calendar_svc, reminders_svc) -> Iterator[Callable[[], User]]:
    clients: list[httpx.Client] = []

    class _Auth(httpx.Auth):
        def __init__(self, uid: str, audience: str) -> None:
            self.uid, self.audience = uid, audience

        def auth_flow(self, request):
            request.headers.update(auth_headers(self.uid, self.audience))  # fresh token (60 s lifetime)
            yield request

    def _make() -> User:
        uid = new_uid()
        cal = httpx.Client(base_url=calendar_svc.url, timeout=60, auth=_Auth(uid, "calendar"))
        rem = httpx.Client(base_url=reminders_svc.url, timeout=60, auth=_Auth(uid, "reminders"))
        clients.extend([cal, rem])
        return User(uid, cal, rem)

    yield _make
    for c in clients:
        c.close()


def wait_for(predicate: Callable[[], object], timeout_s: float = 180.0, interval_s: float = 0.5, message: str = "condition",
             diagnose: Callable[[], object] | None = None):
    """Poll until ``predicate`` returns something truthy. The deadline only catches a hang
    (generous, for a loaded shared machine); it is not a timing assertion. ``diagnose``
    adds the state that explains a hang to the failure message."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = ""
            if diagnose is not None:
                try:
                    detail = f"\n{diagnose()}"
                except Exception as exc:  # noqa: BLE001 (the timeout is the failure to report)
                    detail = f"\n(diagnose failed: {exc!r})"
            raise AssertionError(f"timed out waiting for {message}{detail}")
        time.sleep(interval_s)


@dataclass
class SyncState:
    """The worker's view of one connection, read from the calendar schema (tests only)."""

    db: psycopg.Connection

    def idle(self, connection_id: str) -> bool:
        """No run in progress, none due, no reminder change queued: the worker is done with
        this connection until something new happens (a webhook, a reminder change, the poll)."""
        row = self.db.execute(
            """
            SELECT c.lease_until IS NULL AND c.next_sync_at > now()
               AND NOT EXISTS (SELECT 1 FROM calendar.outbound o WHERE o.connection_id = c.id)
               AND NOT EXISTS (SELECT 1 FROM calendar.runs r WHERE r.connection_id = c.id AND r.status = 'running')
            FROM calendar.connections c WHERE c.id = %s
            """,
            (connection_id,),
        ).fetchone()
        return bool(row and row[0])

    def describe(self, connection_id: str) -> str:
        conn = self.db.execute(
            "SELECT status, next_sync_at, requested_at, lease_until, failures, last_error, now() FROM calendar.connections WHERE id = %s",
            (connection_id,),
        ).fetchone()
        queue = self.db.execute("SELECT reminder_id, op, queued_at, attempts FROM calendar.outbound WHERE connection_id = %s",
                                (connection_id,)).fetchall()
        runs = self.db.execute("SELECT trigger, started_at, finished_at, status, changes_in, changes_out, errors FROM calendar.runs "
                               "WHERE connection_id = %s ORDER BY started_at", (connection_id,)).fetchall()
        return f"connection={conn}\nqueue={queue}\nruns={runs}"


@pytest.fixture
def sync_state(db) -> SyncState:
    return SyncState(db)


@pytest.fixture(scope="session")
def encryption_key() -> str:
    return ENCRYPTION_KEY


@pytest.fixture(scope="session")
def fernet() -> Fernet:
    return Fernet(ENCRYPTION_KEY.encode())


@pytest.fixture
def waiter():
    return wait_for


def connect_caldav(user: User, radicale: RadicaleServer, dav: DavUser, **extra) -> dict:
    r = user.cal.post("/v1/calendar/connections/caldav",
                      json={"server_url": radicale.url, "username": dav.username, "password": dav.password, **extra})
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture
def caldav_connect(radicale):
    return lambda user, dav, **extra: connect_caldav(user, radicale, dav, **extra)


@pytest.fixture
def gapi(google_fake) -> Iterator[httpx.Client]:
    """The local Google server, as the user in Google's UI (its /_test routes) and for reading its state."""
    with httpx.Client(base_url=google_fake.url, timeout=30) as client:
        yield client


@pytest.fixture
def google_connect(gapi):
    def _connect(user, **extra) -> dict:
        r = user.cal.post("/v1/calendar/google/connect")
        assert r.status_code == 200, r.text
        started = r.json()
        hint = "acct" + uuid.uuid4().hex[:10]
        r = gapi.get(started["authorization_url"].replace(str(gapi.base_url).rstrip("/"), "") + "&login_hint=" + hint, follow_redirects=False)
        assert r.status_code == 302, r.text
        query = parse_qs(urlparse(r.headers["location"]).query)
        assert query["state"] == [started["state"]]
        r = user.cal.post("/v1/calendar/google/callback", json={"code": query["code"][0], "state": started["state"], **extra})
        assert r.status_code == 201, r.text
        return r.json()

    return _connect


@pytest.fixture(scope="session", autouse=True)
def no_unhandled_errors_in_service_logs(eindr_tmp):
    yield
    import os
    import shutil

    keep = os.environ.get("EINDR_CALENDAR_TEST_LOGS")
    if keep:
        os.makedirs(keep, exist_ok=True)
        for log in eindr_tmp.glob("*.log"):
            shutil.copy(log, keep)
    bad = []
    for log in sorted(eindr_tmp.glob("calendar*.log")):
        bad += [f"{log.name}: {line[:300]}" for line in log.read_text(errors="replace").splitlines()
                if "unhandled error" in line or "sync run failed" in line or "sync run crashed" in line]
    assert not bad, "\n".join(bad)
