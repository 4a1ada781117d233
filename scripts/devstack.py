"""``make run``: the whole Eindr stack on one machine, no Docker.

Starts PostgreSQL 16 + pgvector (embedded pgserver, unless EINDR_DATABASE_URL is set) and
Redis (a local redis-server, unless EINDR_REDIS_URL is set), applies every service's
migrations, starts each installed component on its port, prints where things are, and
stops everything it started on Ctrl-C.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "libs" / "common"))

from eindr_common.localstack import python_env, start_postgres, start_redis, wait_http
from eindr_common.migrations import upgrade


@dataclass
class Component:
    name: str
    package: str
    port: int
    command: list[str] | None = None  # default: uvicorn <package>.app:create_app
    health_path: str = "/healthz"
    # Start only when this environment variable is set (e.g. a model that must be supplied).
    requires_env: str | None = None

    def argv(self) -> list[str]:
        if self.command:
            return [sys.executable, *self.command]
        return [sys.executable, "-m", "uvicorn", f"{self.package}.app:create_app", "--factory",
                "--host", "0.0.0.0", "--port", str(self.port), "--no-access-log"]


COMPONENTS = [
    Component("users", "eindr_users", 8102),
    Component("auth", "eindr_auth", 8101),
    Component("reminders", "eindr_reminders", 8103),
    Component("reminders-worker", "eindr_reminders", 9103, command=["-m", "eindr_reminders.worker"]),
    Component("notes", "eindr_notes", 8104),
    Component("notes-worker", "eindr_notes", 9104, command=["-m", "uvicorn", "eindr_notes.worker:create_app", "--factory",
                                                          "--host", "0.0.0.0", "--port", "9104", "--no-access-log"]),
    Component("ledger", "eindr_ledger", 8105),
    Component("friends", "eindr_friends", 8106),
    Component("calendar", "eindr_calendar", 8107),
    Component("calendar-worker", "eindr_calendar", 9107, command=["-m", "eindr_calendar.worker"]),
    Component("history", "eindr_history", 8108),
    Component("history-worker", "eindr_history", 9108, command=["-m", "uvicorn", "eindr_history.worker:create_app", "--factory",
                                                              "--host", "0.0.0.0", "--port", "9108", "--no-access-log"]),
    Component("assistant", "eindr_assistant", 8109),
    Component("audit", "eindr_audit", 8110),
    Component("stt", "eindr_stt", 8201),
    Component("intent", "eindr_intent", 8202),
    # Bloom weights cannot be bundled: chat runs when EINDR_CHAT_MODEL names a checkpoint dir.
    Component("chat", "eindr_chat", 8203, requires_env="EINDR_CHAT_MODEL"),
    Component("tts", "eindr_tts", 8204),
    Component("gateway", "eindr_gateway", 8000),
]

SERVICE_DIRS = {"users": "services/users", "auth": "services/auth", "reminders": "services/reminders",
                "notes": "services/notes", "ledger": "services/ledger", "friends": "services/friends",
                "calendar": "services/calendar", "history": "services/history", "assistant": "services/assistant",
                "audit": "services/audit"}


def _module_of(component: Component) -> str:
    # ["-m", "eindr_x.worker"] or ["-m", "uvicorn", "eindr_x.worker:create_app", ...]
    target = component.command[1] if component.command[1] != "uvicorn" else component.command[2]
    return target.split(":", 1)[0]


def installed(component: Component) -> bool:
    if importlib.util.find_spec(component.package) is None:
        return False
    if component.command:  # a worker module must exist too
        return importlib.util.find_spec(_module_of(component)) is not None
    return True


def wanted(component: Component) -> bool:
    if component.requires_env and not os.environ.get(component.requires_env):
        print(f"--> {component.name} not started: set {component.requires_env} to run it")
        return False
    return True


def main() -> int:
    state = ROOT / ".local"
    started: list[tuple[str, subprocess.Popen]] = []
    pg_server = None

    def stop_all(*_: object) -> None:
        # A second Ctrl-C must not abandon children half-way through the shutdown.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for name, proc in reversed(started):
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 15
        for name, proc in reversed(started):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"!! {name} ignored SIGTERM; killing it")
                proc.kill()
                proc.wait()
        if pg_server is not None:
            pg_server.cleanup()

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    # Explicit, so Ctrl-C works even where a parent shell started us with SIGINT ignored.
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        database_url = os.environ.get("EINDR_DATABASE_URL")
        if not database_url:
            print("==> starting PostgreSQL 16 + pgvector (embedded, data in .local/pgdata)")
            pg_server, database_url = start_postgres(state / "pgdata")
        redis_url = os.environ.get("EINDR_REDIS_URL")
        if not redis_url:
            print("==> starting redis-server")
            redis_proc, redis_url = start_redis(state / "redis", port=int(os.environ.get("EINDR_LOCAL_REDIS_PORT", "6379")))
            started.append(("redis", redis_proc))

        components = [c for c in COMPONENTS if installed(c) and wanted(c)]
        for c in components:
            mig = ROOT / SERVICE_DIRS.get(c.name, "-") / "migrations"
            if mig.is_dir():
                upgrade(mig, database_url)
                print(f"==> migrated {c.name}")

        env = python_env({
            "EINDR_ENV": os.environ.get("EINDR_ENV", "development"),
            "EINDR_DATABASE_URL": database_url,
            "EINDR_REDIS_URL": redis_url,
            "EINDR_FIREBASE_PROJECT_ID": os.environ.get("EINDR_FIREBASE_PROJECT_ID", "eindr-local"),
            "FIREBASE_AUTH_EMULATOR_HOST": os.environ.get("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9099"),
            **{k: v for k, v in os.environ.items() if k.startswith("EINDR_")},
        })
        env["EINDR_DATABASE_URL"], env["EINDR_REDIS_URL"] = database_url, redis_url
        logs = state / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for c in components:
            log = open(logs / f"{c.name}.log", "ab")  # noqa: SIM115 (the child writes to it for its life)
            # Own session: Ctrl-C reaches only this script, which then stops everyone in order.
            proc = subprocess.Popen(c.argv(), env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
            started.append((c.name, proc))
        for (name, proc), c in zip(started[-len(components):], components):
            try:
                wait_http(f"http://127.0.0.1:{c.port}{c.health_path}", 180, proc)
            except RuntimeError as exc:
                print(f"!! {name} did not start: {exc}\n   see .local/logs/{name}.log")
                raise KeyboardInterrupt from exc

        print("\nEindr is running:")
        print("  API (gateway)   http://127.0.0.1:8000/v1/...")
        print("  API docs        http://127.0.0.1:8000/docs")
        print("  metrics         http://127.0.0.1:<port>/metrics on every component")
        print("  a token         make token USER=alice")
        for c in components:
            print(f"  {c.name:<16} http://127.0.0.1:{c.port}   log: .local/logs/{c.name}.log")
        print(f"  postgres        {database_url}")
        print(f"  redis           {redis_url}")
        print("Ctrl-C stops everything.")
        while True:
            for name, proc in started:
                if proc.poll() is not None:
                    print(f"!! {name} exited with {proc.returncode}; see .local/logs/{name}.log")
                    raise KeyboardInterrupt
            time.sleep(1)
    except KeyboardInterrupt:
        print("\n==> stopping")
        stop_all()
        return 0


if __name__ == "__main__":
    sys.exit(main())
