"""Firing benchmark of the reminders scheduler (prints its numbers; not a timed test).

    .venv/bin/python services/reminders/bench.py [--pending 100000] [--due 10000] [--window 60] [--workers 2]

* inserts ``--pending`` scheduled reminders (COPY, straight into the reminders schema), of
  which ``--due`` fire inside one ``--window``-second window that starts ``--lead`` seconds
  from now, the rest days later;
* starts ``--workers`` real worker processes (``python -m eindr_reminders.worker``);
* measures, from the delivery rows: lateness (delivered_at - fire_at) p50/p99/max, missed
  (due but not delivered by the end), duplicates (deliveries beyond one per reminder);
  the peak resident memory of each worker and the peak number of fires it held in memory.
* ``--bulk`` also times ``POST /v1/reminders:bulk`` with 1,000 items against a reminders
  API process (``--gateway URL --token T`` to go through the gateway instead).

Uses EINDR_DATABASE_URL / EINDR_REDIS_URL when set, else starts PostgreSQL (pgserver) and
Redis in a temporary directory, exactly like the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from eindr_common.localstack import (
    free_port,
    python_env,
    start_postgres,
    start_redis,
    wait_http,
)
from eindr_common.migrations import upgrade

SECRET = "bench-internal-token-secret-0123456789abcdef"


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


async def seed(dsn: str, pending: int, due: int, start: datetime, window_s: float, users: int) -> list[uuid.UUID]:
    conn = await asyncpg.connect(dsn)
    await conn.execute("TRUNCATE reminders.deliveries, reminders.user_sequences, reminders.reminders CASCADE")
    later = start + timedelta(days=3)
    due_ids = []
    records = []
    for i in range(pending):
        rid = uuid.uuid4()
        if i < due:
            fire = start + timedelta(seconds=window_s * i / due)
            due_ids.append(rid)
        else:
            fire = later + timedelta(seconds=i)
        fire = fire.replace(microsecond=(fire.microsecond // 1000) * 1000)
        records.append(
            (
                rid,
                f"bench-{i % users}",
                f"bench reminder {i}",
                fire.replace(tzinfo=None),
                "+00:00",
                "fixed",
                [0],
                "scheduled",
                fire,
                fire,
                0,
                fire,
            )
        )
    await conn.copy_records_to_table(
        "reminders",
        schema_name="reminders",
        records=records,
        columns=[
            "id",
            "uid",
            "title",
            "anchor_local",
            "timezone",
            "tz_mode",
            "alarms",
            "status",
            "due_at",
            "next_occurrence_at",
            "next_offset_s",
            "next_fire_at",
        ],
    )
    await conn.execute("ANALYZE reminders.reminders")
    await conn.close()
    return due_ids


def scrape(port: int, name: str) -> float | None:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


async def fire_bench(args, env: dict[str, str], dsn: str) -> dict:
    start = datetime.now(UTC) + timedelta(seconds=args.lead)
    t0 = time.monotonic()
    due_ids = await seed(dsn, args.pending, args.due, start, args.window, args.users)
    print(
        f"seeded {args.pending:,} reminders ({args.due:,} due in {args.window:.0f}s from {start:%H:%M:%S}Z) in {time.monotonic() - t0:.1f}s"
    )
    if datetime.now(UTC) > start - timedelta(seconds=5):
        raise SystemExit("seeding took longer than --lead; raise --lead")
    workers = []
    logs = Path(tempfile.mkdtemp(prefix="reminders-bench-"))
    dead = f"http://127.0.0.1:{free_port()}"
    for n in range(args.workers):
        port = free_port()
        wenv = {
            **env,
            "EINDR_REMINDERS_WORKER_METRICS_PORT": str(port),
            "EINDR_REMINDERS_WORKER_ID": f"bench-{n}",
            "EINDR_USERS_URL": env.get("EINDR_USERS_URL", dead),
            "EINDR_AUTH_URL": env.get("EINDR_AUTH_URL", dead),
            "EINDR_LOG_LEVEL": "WARNING",
            "EINDR_MIGRATE_ON_START": "false",
        }
        proc = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, "-m", "eindr_reminders.worker"],
            env=python_env(wenv),
            stdout=open(logs / f"worker-{n}.log", "wb"),  # noqa: ASYNC230,SIM115
            stderr=subprocess.STDOUT,
        )
        wait_http(f"http://127.0.0.1:{port}/metrics", 60, proc)
        workers.append((proc, port, psutil.Process(proc.pid)))
    idle_rss = [p.memory_info().rss for _, _, p in workers]
    peak_rss = list(idle_rss)
    peak_jobs = [0.0] * len(workers)
    end = start + timedelta(seconds=args.window)
    conn = await asyncpg.connect(dsn)
    deadline = end + timedelta(seconds=args.grace)
    delivered = 0
    while datetime.now(UTC) < deadline:
        for i, (_, port, ps) in enumerate(workers):
            peak_rss[i] = max(peak_rss[i], ps.memory_info().rss)
            jobs = scrape(port, "eindr_reminders_window_jobs")
            if jobs is not None:
                peak_jobs[i] = max(peak_jobs[i], jobs)
        delivered = await conn.fetchval("SELECT count(*) FROM reminders.deliveries")
        if delivered >= args.due and datetime.now(UTC) > end:
            break
        await asyncio.sleep(0.5)
    rows = await conn.fetch(
        "SELECT reminder_id, extract(epoch FROM delivered_at - fire_at) AS late, worker FROM reminders.deliveries"
    )
    per_reminder = await conn.fetch("SELECT reminder_id, count(*) AS n FROM reminders.deliveries GROUP BY reminder_id")
    early_extra = await conn.fetchval(
        "SELECT count(*) FROM reminders.deliveries WHERE NOT (reminder_id = ANY($1::uuid[]))", due_ids
    )
    await conn.close()
    for proc, _, _ in workers:
        proc.terminate()
    for proc, _, _ in workers:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    late = [float(r["late"]) for r in rows]
    delivered_ids = {r["reminder_id"] for r in rows}
    by_worker: dict[str, int] = {}
    for r in rows:
        by_worker[r["worker"]] = by_worker.get(r["worker"], 0) + 1
    return {
        "delivered": len(delivered_ids),
        "missed": len(set(due_ids) - delivered_ids),
        "duplicates": sum(r["n"] - 1 for r in per_reminder),
        "not_due_but_fired": early_extra,
        "late_p50_ms": pct(late, 50) * 1000,
        "late_p99_ms": pct(late, 99) * 1000,
        "late_max_ms": max(late) * 1000 if late else float("nan"),
        "late_mean_ms": statistics.fmean(late) * 1000 if late else float("nan"),
        "by_worker": by_worker,
        "idle_rss_mb": [round(x / 2**20, 1) for x in idle_rss],
        "peak_rss_mb": [round(x / 2**20, 1) for x in peak_rss],
        "peak_window_jobs": peak_jobs,
        "logs": str(logs),
    }


def bulk_bench(args, env: dict[str, str]) -> dict:
    from eindr_common.identity import Principal, mint_internal_token

    proc = None
    if args.gateway:
        base, headers = args.gateway, {"authorization": f"Bearer {args.token}"}
    else:
        port = free_port()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "eindr_reminders.app:create_app",
                "--factory",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=python_env({**env, "EINDR_LOG_LEVEL": "WARNING"}),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/healthz", 60, proc)
        headers = None
    times = []
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            for n in range(args.bulk_rounds):
                if headers is None or not args.gateway:
                    h = {
                        "authorization": "Bearer "
                        + mint_internal_token(Principal(uid=f"bulk-{n % 4}"), "reminders", SECRET)
                    }
                else:
                    h = headers
                due = datetime.now(UTC) + timedelta(days=1)
                items = [
                    {"title": f"bulk {i}", "due_at": (due + timedelta(seconds=i)).isoformat(), "tags": ["bench"]}
                    for i in range(1000)
                ]
                t = time.perf_counter()
                r = client.post("/v1/reminders:bulk", json={"items": items}, headers=h)
                times.append(time.perf_counter() - t)
                assert r.status_code == 201, r.text[:300]
    finally:
        if proc:
            proc.terminate()
            proc.wait(20)
    return {
        "rounds": len(times),
        "p50_ms": pct(times, 50) * 1000,
        "p99_ms": pct(times, 99) * 1000,
        "max_ms": max(times) * 1000,
        "via": "gateway" if args.gateway else "reminders API directly",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pending", type=int, default=100_000)
    ap.add_argument("--due", type=int, default=10_000)
    ap.add_argument("--window", type=float, default=60.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--lead", type=float, default=45.0, help="seconds from now to the start of the due window")
    ap.add_argument("--grace", type=float, default=60.0, help="seconds after the window to wait for stragglers")
    ap.add_argument("--bulk", action="store_true", help="also time 1,000-item bulk creates")
    ap.add_argument("--bulk-rounds", type=int, default=20)
    ap.add_argument("--gateway")
    ap.add_argument("--token")
    args = ap.parse_args()

    cleanup = []
    dsn, redis_url = os.environ.get("EINDR_DATABASE_URL"), os.environ.get("EINDR_REDIS_URL")
    tmp = Path(tempfile.mkdtemp(prefix="reminders-bench-stack-"))
    if not dsn:
        server, dsn = start_postgres(tmp / "pg")
        cleanup.append(server.cleanup)
    if not redis_url:
        proc, redis_url = start_redis(tmp / "redis")
        cleanup.append(proc.terminate)
    env = {
        "EINDR_ENV": "test",
        "EINDR_DATABASE_URL": dsn,
        "EINDR_REDIS_URL": redis_url,
        "EINDR_INTERNAL_TOKEN_SECRET": SECRET,
        "EINDR_MIGRATE_ON_START": "false",
    }
    upgrade(HERE / "migrations", dsn)
    try:
        print(
            f"machine: {platform.node()} {platform.machine()}, {psutil.cpu_count()} CPUs, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB, load {os.getloadavg()[0]:.1f}; {datetime.now(UTC):%Y-%m-%d %H:%M}Z"
        )
        result = asyncio.run(fire_bench(args, env, dsn))
        print(f"\nfiring: {args.pending:,} pending, {args.due:,} due within {args.window:.0f}s, {args.workers} workers")
        print(
            f"  lateness p50 {result['late_p50_ms']:.1f} ms | p99 {result['late_p99_ms']:.1f} ms | max {result['late_max_ms']:.1f} ms "
            f"| mean {result['late_mean_ms']:.1f} ms"
        )
        print(
            f"  delivered {result['delivered']:,} | missed {result['missed']} | duplicates {result['duplicates']} "
            f"| fired though not due {result['not_due_but_fired']}"
        )
        print(f"  per worker deliveries {result['by_worker']}")
        print(
            f"  worker RSS idle {result['idle_rss_mb']} MB, peak {result['peak_rss_mb']} MB; "
            f"peak fires held in memory {result['peak_window_jobs']}"
        )
        print(f"  worker logs: {result['logs']}")
        if args.bulk:
            b = bulk_bench(args, env)
            print(
                f"\nbulk create 1,000 items x {b['rounds']} ({b['via']}): p50 {b['p50_ms']:.0f} ms | p99 {b['p99_ms']:.0f} ms | max {b['max_ms']:.0f} ms"
            )
    finally:
        for fn in reversed(cleanup):
            try:
                fn()
            except Exception:  # noqa: BLE001,S110
                pass


if __name__ == "__main__":
    main()
