"""Calendar sync benchmark (issue: initial sync of a 5,000-event Radicale calendar and an
incremental sync of 10 changes: wall time and requests made).

    .venv/bin/python services/calendar/bench.py [--events 5000] [--changes 10]

Starts everything it needs as real processes: PostgreSQL (embedded pgserver, or
EINDR_DATABASE_URL), Redis (EINDR_REDIS_URL or a local redis-server), Radicale, the
reminders service and the calendar service. The 5,000 events are seeded straight into
Radicale's file storage (seeding is not what is measured); the 10 changes are made through
CalDAV by the caldav library, like another calendar app would. Each sync is one
``POST /v1/calendar/connections/{id}/sync``; its run record gives the CalDAV requests made,
and every change in costs one reminders API call (changes_in). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import caldav
import httpx
from cryptography.fernet import Fernet
from eindr_common.localstack import (
    free_port,
    python_env,
    start_postgres,
    start_redis,
    wait_http,
)
from eindr_common.testing import TEST_SECRET, auth_headers


def ics(uid: str, summary: str, start: datetime) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{start:%Y%m%dT%H%M%SZ}\r\nDURATION:PT30M\r\n"
        f"SUMMARY:{summary}\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:x\r\nTRIGGER:-PT10M\r\nEND:VALARM\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=python_env(env), stdout=open(log, "ab"), stderr=subprocess.STDOUT)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=5000)
    ap.add_argument("--changes", type=int, default=10)
    args = ap.parse_args()
    procs: list[subprocess.Popen] = []
    tmp = Path(tempfile.mkdtemp(prefix="eindr-calendar-bench-"))
    pg = None
    try:
        if os.environ.get("EINDR_DATABASE_URL"):
            db_url = os.environ["EINDR_DATABASE_URL"]
        else:
            pg, db_url = start_postgres(tmp / "pg")
        if os.environ.get("EINDR_REDIS_URL"):
            redis_url = os.environ["EINDR_REDIS_URL"]
        else:
            rproc, redis_url = start_redis(tmp / "redis")
            procs.append(rproc)

        # Radicale
        rport = free_port()
        (tmp / "users").write_text("bench:bench-pw\n")
        (tmp / "radicale.conf").write_text(
            f"[server]\nhosts = 127.0.0.1:{rport}\nmax_content_length = 100000000\n[auth]\ntype = htpasswd\n"
            f"htpasswd_filename = {tmp / 'users'}\nhtpasswd_encryption = plain\n[storage]\nfilesystem_folder = {tmp / 'collections'}\n"
            "[logging]\nlevel = warning\n")
        procs.append(start([sys.executable, "-m", "radicale", "--config", str(tmp / "radicale.conf")], {}, tmp / "radicale.log"))
        rurl = f"http://127.0.0.1:{rport}/"
        for _ in range(300):
            try:
                httpx.get(rurl, timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        dav = caldav.DAVClient(url=rurl, username="bench", password="bench-pw", timeout=600)
        cal = dav.principal().make_calendar(name="Bench")
        folder = tmp / "collections" / "collection-root" / "bench" / str(cal.url).rstrip("/").rsplit("/", 1)[-1]
        base = (datetime.now(UTC) + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
        for i in range(args.events):
            (folder / f"ev{i:05d}.ics").write_text(ics(f"ev{i:05d}", f"Event {i}", base + timedelta(hours=i)))

        # Radicale builds its item cache on first access to files placed on disk; a real server
        # has it already, so warm it outside the measurement.
        t0 = time.perf_counter()
        dav.propfind(str(cal.url), '<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:cs="http://calendarserver.org/ns/">'
                     "<d:prop><cs:getctag/></d:prop></d:propfind>", depth=0)
        print(f"warmed radicale's cache in {time.perf_counter() - t0:.1f} s", flush=True)
        common = {"EINDR_ENV": "test", "EINDR_DATABASE_URL": db_url, "EINDR_REDIS_URL": redis_url,
                  "EINDR_INTERNAL_TOKEN_SECRET": TEST_SECRET, "EINDR_MIGRATE_ON_START": "true", "EINDR_LOG_LEVEL": "WARNING"}
        rem_port, cal_port = free_port(), free_port()
        dead = f"http://127.0.0.1:{free_port()}"
        procs.append(start([sys.executable, "-m", "uvicorn", "eindr_reminders.app:create_app", "--factory", "--port", str(rem_port),
                            "--no-access-log", "--log-level", "warning"],
                           {**common, "EINDR_USERS_URL": dead, "EINDR_AUTH_URL": dead}, tmp / "reminders.log"))
        wait_http(f"http://127.0.0.1:{rem_port}/healthz", 120, procs[-1])
        procs.append(start([sys.executable, "-m", "uvicorn", "eindr_calendar.app:create_app", "--factory", "--port", str(cal_port),
                            "--no-access-log", "--log-level", "warning"],
                           {**common, "EINDR_REMINDERS_URL": f"http://127.0.0.1:{rem_port}",
                            "EINDR_CALENDAR_ENCRYPTION_KEYS": Fernet.generate_key().decode(), "EINDR_CALENDAR_HTTP_TIMEOUT_S": "300",
                            "EINDR_CALENDAR_SYNC_TIMEOUT_S": "1800"}, tmp / "calendar.log"))
        wait_http(f"http://127.0.0.1:{cal_port}/healthz", 120, procs[-1])

        uid = "bench" + uuid.uuid4().hex[:8]

        class Auth(httpx.Auth):
            def auth_flow(self, request):
                request.headers.update(auth_headers(uid, "calendar"))
                yield request

        api = httpx.Client(base_url=f"http://127.0.0.1:{cal_port}", timeout=1800, auth=Auth())
        conn = api.post("/v1/calendar/connections/caldav", json={"server_url": rurl, "username": "bench", "password": "bench-pw",
                                                                "poll_interval_s": 86400}).json()

        def sync() -> tuple[float, dict]:
            t0 = time.perf_counter()
            r = api.post(f"/v1/calendar/connections/{conn['id']}/sync")
            wall = time.perf_counter() - t0
            r.raise_for_status()
            return wall, r.json()

        rows = []
        print(f"seeded {args.events} events; syncing", flush=True)
        wall, run = sync()
        print(f"initial: {wall:.2f} s, {run}", flush=True)
        rows.append(("initial sync", args.events, wall, run))
        wall, run = sync()
        rows.append(("no change (ctag hit)", 0, wall, run))
        step = max(1, args.events // max(1, args.changes))
        events = [caldav.Event(client=dav, url=cal.url.join(f"ev{i:05d}.ics"), parent=cal).load()
                  for i in range(0, args.events, step)][: args.changes]
        for n, ev in enumerate(events):
            ev.data = ev.data.replace("SUMMARY:Event", f"SUMMARY:Edited {n} Event")
            ev.save()
        wall, run = sync()
        rows.append((f"incremental, {args.changes} edits", args.changes, wall, run))

        print(f"\nCalendar sync benchmark — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
              f"{os.cpu_count()} CPUs, Python {platform.python_version()}, Radicale (filesystem storage)\n")
        print("| sync | events changed | wall time | CalDAV requests | reminders API calls | status |")
        print("|---|---:|---:|---:|---:|---|")
        for name, _n, wall, run in rows:
            n = run["changes_in"]
            # new events: POST /v1/reminders:bulk, 500 per call; edits: GET + PATCH each
            calls = f"{-(-n // 500)} bulk POSTs" if name == "initial sync" else (f"{n} GET + {n} PATCH" if n else "0")
            print(f"| {name} | {n} | {wall:.2f} s | {run['requests']} | {calls} | {run['status']} |")
        api.close()
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        if pg is not None:
            pg.cleanup()


if __name__ == "__main__":
    main()
