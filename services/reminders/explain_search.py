"""Query plans of the free-text filter ``q`` (list and cancel by filter) at scale; prints
EXPLAIN ANALYZE output, asserts nothing (not a test).

    .venv/bin/python services/reminders/explain_search.py [--rows 100000] [--users 1]

Seeds ``--rows`` reminders spread over ``--users`` users (through
``repository.insert_reminders``, as a bulk create stores them with their search keys;
titles, notes and phrases drawn from a vocabulary, the searched word in about 0.1% of
them), then EXPLAINs exactly the SQL the repository sends (captured from
``repository.list_reminders`` / ``repository.cancel_matching``), for the first user.

Uses EINDR_DATABASE_URL when set (the reminders schema is truncated!), else starts
PostgreSQL (pgserver) in a temporary directory, like the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from eindr_common.localstack import start_postgres
from eindr_common.migrations import upgrade

from eindr_reminders import repository

WORDS = (  # noqa: SIM905 (a vocabulary reads better as prose)
    "call buy pay book send email check water clean pick up bring renew cancel order fix read write plan "
    "mum dad milk bread rent bills car plants kitchen kids school gym doctor bank insurance passport visa "
    "meeting report invoice tickets flowers birthday present laundry groceries vet train flight hotel"
).split()
RARE = "dentist"


class Capture:
    """Stands in for a connection: records the statement the repository would send."""

    def __init__(self) -> None:
        self.sql = ""
        self.args: tuple[Any, ...] = ()

    async def fetch(self, sql: str, *args: Any) -> list:
        self.sql, self.args = sql, args
        return []

    async def execute(self, sql: str, *args: Any) -> str:
        self.sql, self.args = sql, args
        return "UPDATE 0"


def text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


async def seed(dsn: str, rows_wanted: int, users: int) -> str:
    rng = random.Random(7)
    conn = await asyncpg.connect(dsn)
    await conn.execute(
        "TRUNCATE reminders.deliveries, reminders.user_sequences, reminders.reminder_search, reminders.reminders CASCADE"
    )
    start = datetime.now(UTC) + timedelta(days=1)
    rows = []
    for i in range(rows_wanted):
        due = start + timedelta(minutes=i)
        title = text(rng, 3)
        if rng.random() < 0.001:
            title = f"{RARE} {title}"
        rows.append({
            "id": uuid.uuid4(), "uid": f"explain-{i % users}", "title": title,
            "notes": text(rng, 8) if i % 3 == 0 else None,
            "phrase": f"remind me to {title}" if i % 2 == 0 else None,
            "source": "text", "priority": "normal", "tags": [], "exdates": [], "alarms": [0],
            "anchor_local": due.replace(tzinfo=None), "timezone": "+00:00", "tz_mode": "fixed", "status": "scheduled",
            "due_at": due, "next_occurrence_at": due, "next_offset_s": 0, "next_fire_at": due,
        })
    # The service's own write path: the rows and their search keys, as a bulk create stores them.
    async with conn.transaction():
        await repository.insert_reminders(conn, rows)
    await conn.execute("ANALYZE reminders.reminders, reminders.reminder_search")
    await conn.close()
    return "explain-0"


async def explain(dsn: str, uid: str, q: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        cap = Capture()
        await repository.list_reminders(
            cap, uid, status=None, due_from=None, due_to=None, tag=None, q=q, limit=51, after=None
        )
        print(f"\n-- GET /v1/reminders?q={q}  (repository.list_reminders)")
        for (line,) in await conn.fetch("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + cap.sql, *cap.args):
            print(line)
        cap = Capture()
        await repository.cancel_matching(cap, uid, ids=None, due_from=None, due_to=None, tag=None, q=q)
        print(f'\n-- POST /v1/reminders:cancel {{"q": "{q}"}}  (repository.cancel_matching; rolled back)')
        tx = conn.transaction()
        await tx.start()
        try:
            for (line,) in await conn.fetch("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + cap.sql, *cap.args):
                print(line)
        finally:
            await tx.rollback()
    finally:
        await conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--users", type=int, default=1)
    ap.add_argument("--q", action="append", help=f"queries to explain (default: {RARE!r} and 'milk')")
    args = ap.parse_args()
    cleanup = None
    dsn = os.environ.get("EINDR_DATABASE_URL")
    if not dsn:
        server, dsn = start_postgres(Path(tempfile.mkdtemp(prefix="reminders-explain-")) / "pg")
        cleanup = server.cleanup
    try:
        upgrade(HERE / "migrations", dsn)
        uid = asyncio.run(seed(dsn, args.rows, args.users))
        print(f"{args.rows:,} reminders over {args.users:,} user(s); plans for {uid}")
        for q in args.q or [RARE, "milk"]:
            asyncio.run(explain(dsn, uid, q))
    finally:
        if cleanup:
            cleanup()


if __name__ == "__main__":
    main()
