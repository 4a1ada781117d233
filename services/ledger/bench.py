"""Ledger and friends benchmarks (issue 7), printed as Markdown.

1. ``GET /v1/ledger/balances`` for a user with 100,000 ledger entries across 500 contacts
   (3 currencies; settlements included), through the real ledger process (which also asks
   the real friends process for ledger peers) — target p50 ≤ 20 ms — beside the same
   aggregation as raw SQL through asyncpg in the same run.
2. ``POST /v1/friends/contacts:match`` with 5,000 hashes against 1,000,000 users with
   registered identities (1% of the batch hits) — target p50 ≤ 150 ms — beside the raw
   SQL lookup of the same 5,000 HMACs.

Uses EINDR_DATABASE_URL / EINDR_REDIS_URL when set, else starts its own PostgreSQL
(pgserver) and redis-server in a temporary folder. Run: ``.venv/bin/python services/ledger/bench.py``
(``--quick`` seeds 10x less, for a smoke run).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
from eindr_common.identity import Principal, mint_internal_token
from eindr_common.localstack import (
    free_port,
    python_env,
    start_postgres,
    start_redis,
    wait_http,
)
from eindr_common.migrations import upgrade

ROOT = Path(__file__).resolve().parents[2]
SECRET = "bench-internal-token-secret-0123456789abcdef"
PEPPER = "bench-pepper-0123456789abcdef0123456789abcdef"
QUICK = "--quick" in sys.argv
ONLY_BALANCES = "--balances-only" in sys.argv
ENTRIES = 10_000 if QUICK else 100_000
SEED_BATCH = 500  # entries per seeding transaction
CONTACTS = 500
USERS = 100_000 if QUICK else 1_000_000
BATCH = 5_000
RUNS = 50 if QUICK else 200
MATCH_RUNS = 10 if QUICK else 40


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def row(name: str, samples: list[float], target: str = "") -> str:
    return f"| {name} | {len(samples)} | {statistics.median(samples):.2f} | {pct(samples, 90):.2f} | {pct(samples, 99):.2f} | {target} |"


def token(uid: str, audience: str) -> dict[str, str]:
    return {"authorization": "Bearer " + mint_internal_token(Principal(uid=uid), audience, SECRET, request_id="bench")}


def start(name: str, app: str, env: dict[str, str], log_dir: Path):
    import subprocess

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning"],
        env=python_env(env), stdout=open(log_dir / f"{name}.log", "ab"), stderr=subprocess.STDOUT,  # noqa: SIM115 (the child keeps it)
    )
    wait_http(f"http://127.0.0.1:{port}/healthz", 60, proc)
    return proc, f"http://127.0.0.1:{port}"


async def seed_ledger(pool: asyncpg.Pool, uid: str, peers: list[str]) -> None:
    rng = random.Random(1)
    currencies = [("USD", 2), ("EUR", 2), ("JPY", 0)]
    today = dt.date(2026, 1, 1)
    rows = []
    for i in range(ENTRIES):
        c = rng.randrange(CONTACTS)
        currency, _ = currencies[i % 3]
        direction = "they_owe_me" if rng.random() < 0.6 else "i_owe_them"
        rows.append((uuid.uuid4(), uid, "entry", None, None, f"Contact {c}", None, f"name:contact {c}", direction, currency,
                     rng.randint(1, 10**6), 0, "open", today - dt.timedelta(days=i % 1000), uid))
    # Entries the peers recorded about this user (mirrored into their ledger).
    for p in peers:
        for j in range(200):
            rows.append((uuid.uuid4(), p, "entry", None, uid, None, None, f"user:{uid}", "they_owe_me", "USD",
                         rng.randint(1, 10**5), 0, "open", today, p))
    # Many small transactions, as entries really arrive (one per API request). A single
    # 100k-row COPY would update each of the ~1,500 totals rows ~66 times inside one
    # transaction: ~99,500 dead row versions that page pruning cannot remove before that
    # transaction ends — a state no API write produces, which made the totals read ~10x
    # slower (an index scan through ~97,000 dead index entries) until autovacuum passed.
    # 500 rows per transaction is still far more churn per transaction than the API makes;
    # the totals table's state is printed with the results.
    async with pool.acquire() as conn:
        for start in range(0, len(rows), SEED_BATCH):
            await conn.copy_records_to_table(
                "entries", schema_name="ledger", records=rows[start:start + SEED_BATCH],
                columns=["id", "owner_id", "kind", "settles_entry_id", "counterparty_user_id", "counterparty_name", "counterparty_phone_hash",
                         "contact_key", "direction", "currency", "amount_minor", "settled_minor", "status", "occurred_on", "created_by"],
            )
        await conn.execute("ANALYZE ledger.entries; ANALYZE ledger.totals")


async def totals_state(pool: asyncpg.Pool) -> str:
    async with pool.acquire() as conn:
        r = await conn.fetchrow(
            "SELECT n_live_tup, n_dead_tup, n_tup_upd, n_tup_hot_upd, pg_relation_size(relid) / current_setting('block_size')::int AS pages "
            "FROM pg_stat_user_tables WHERE relid = 'ledger.totals'::regclass"
        )
    hot = 100 * r["n_tup_hot_upd"] / r["n_tup_upd"] if r["n_tup_upd"] else 0
    return (f"ledger.totals after seeding: {r['n_live_tup']:,} live rows, {r['n_dead_tup']:,} dead row versions, "
            f"{r['pages']:,} pages, {hot:.1f}% of its {r['n_tup_upd']:,} trigger updates HOT")


async def seed_users(pool: asyncpg.Pool) -> list[str]:
    """USERS discoverable users with one phone identity each; returns the client-side
    hashes of 1% of them (the hits of a batch)."""
    import hashlib
    import hmac

    pepper = PEPPER.encode()
    directory, identities, hits = [], [], []
    for i in range(USERS):
        uid = f"bench-{i}"
        client = hashlib.sha256(f"+3161{i:07d}".encode()).digest()
        directory.append((uid, True, f"User {i}"))
        identities.append((hmac.new(pepper, client, hashlib.sha256).digest(), uid, "phone"))
        if i % 997 == 0 and len(hits) < BATCH // 100:
            hits.append(client.hex())
    async with pool.acquire() as conn:
        await conn.copy_records_to_table("directory", schema_name="friends", records=directory, columns=["user_id", "discoverable", "display_name"])
        await conn.copy_records_to_table("identities", schema_name="friends", records=identities, columns=["hash", "user_id", "kind"])
        await conn.execute("ANALYZE friends.directory; ANALYZE friends.identities")
    return hits


async def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="eindr-bench-ledger-"))
    pg = redis_proc = None
    db_url = os.environ.get("EINDR_DATABASE_URL")
    redis_url = os.environ.get("EINDR_REDIS_URL")
    if not db_url:
        pg, db_url = start_postgres(tmp / "pg")
    if not redis_url:
        redis_proc, redis_url = start_redis(tmp / "redis")
    procs = []
    try:
        for svc in ("ledger", "friends"):
            await asyncio.to_thread(upgrade, ROOT / "services" / svc / "migrations", db_url)
        env = {"EINDR_ENV": "test", "EINDR_DATABASE_URL": db_url, "EINDR_REDIS_URL": redis_url, "EINDR_INTERNAL_TOKEN_SECRET": SECRET,
               "EINDR_LOG_LEVEL": "WARNING", "EINDR_FRIENDS_HASH_PEPPER": PEPPER, "EINDR_FRIENDS_MATCH_DAILY_LIMIT": "100000000"}
        fproc, friends_url = start("friends", "eindr_friends.app:create_app", env, tmp)
        procs.append(fproc)
        lproc, ledger_url = start("ledger", "eindr_ledger.app:create_app", {**env, "EINDR_FRIENDS_URL": friends_url}, tmp)
        procs.append(lproc)

        pool = await asyncpg.create_pool(db_url, min_size=1, max_size=4)
        uid = "bench-ledger-user"
        peers = [f"bench-peer-{i}" for i in range(5)]
        # Mutual trusted friendships, so the balances include peers' mirrored entries.
        async with pool.acquire() as conn:
            await conn.executemany(
                "INSERT INTO friends.grants (owner_id, friend_id, tier) VALUES ($1, $2, 'trusted') ON CONFLICT DO NOTHING",
                [(uid, p) for p in peers] + [(p, uid) for p in peers],
            )
        t0 = time.perf_counter()
        await seed_ledger(pool, uid, peers)
        seed_ledger_s = time.perf_counter() - t0
        state = await totals_state(pool)
        t0 = time.perf_counter()
        hits = [] if ONLY_BALANCES else await seed_users(pool)
        seed_users_s = time.perf_counter() - t0

        from eindr_ledger import repository as ledger_repo

        sql = ledger_repo._BALANCES.format(own_filter="", peer_filter="")
        naive = ledger_repo.AGGREGATE_BALANCES
        api, raw, raw_naive, floor, peers_http = [], [], [], [], []
        async with httpx.AsyncClient(base_url=friends_url, timeout=30) as client:
            for _ in range(RUNS):
                t = time.perf_counter()
                r = await client.get(f"/internal/friends/{uid}/ledger-peers", headers=token(uid, "friends"))
                peers_http.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200 and len(r.json()["peers"]) == len(peers)
        async with httpx.AsyncClient(base_url=ledger_url, timeout=30) as client:
            for _ in range(RUNS):
                t = time.perf_counter()
                await client.get("/healthz")
                floor.append((time.perf_counter() - t) * 1000)
            first = await client.get("/v1/ledger/balances", headers=token(uid, "ledger"))
            assert first.status_code == 200, first.text
            items = first.json()["items"]
            for _ in range(10):  # warm up
                await client.get("/v1/ledger/balances", headers=token(uid, "ledger"))
            for _ in range(RUNS):
                t = time.perf_counter()
                r = await client.get("/v1/ledger/balances", headers=token(uid, "ledger"))
                api.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200
        async with pool.acquire() as conn:
            by_totals = [tuple(r) for r in await conn.fetch(sql, uid, peers)]
            by_group = [tuple(r) for r in await conn.fetch(naive, uid, peers)]
            assert by_totals == by_group, "ledger.totals disagrees with GROUP BY"
            for _ in range(RUNS):
                t = time.perf_counter()
                await conn.fetch(ledger_repo.OWN_TOTALS, uid)
                await conn.fetch(ledger_repo.PEER_TOTALS, uid, peers)
                raw.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                await conn.fetch(naive, uid, peers)
                raw_naive.append((time.perf_counter() - t) * 1000)

        rng = random.Random(2)
        match_api, match_raw = [], []
        import hashlib
        import hmac

        found = 0
        async with httpx.AsyncClient(base_url=friends_url, timeout=60) as client:
            if ONLY_BALANCES:
                await pool.close()
                print(state)
                print(row("GET /v1/ledger/balances", api, "p50 ≤ 20 ms"))
                print(row("same two ledger.totals queries (own + peers), raw asyncpg", raw))
                print(row("GROUP BY over all entries, raw asyncpg", raw_naive))
                return
            for i in range(MATCH_RUNS + 3):
                batch = hits + [os.urandom(32).hex() for _ in range(BATCH - len(hits))]
                rng.shuffle(batch)
                t = time.perf_counter()
                r = await client.post("/v1/friends/contacts:match", json={"hashes": batch}, headers=token(f"bench-searcher-{i}", "friends"))
                elapsed = (time.perf_counter() - t) * 1000
                assert r.status_code == 200, r.text
                found = len(r.json()["matches"])
                if i >= 3:
                    match_api.append(elapsed)
        async with pool.acquire() as conn:
            for i in range(MATCH_RUNS):
                batch = hits + [os.urandom(32).hex() for _ in range(BATCH - len(hits))]
                t = time.perf_counter()
                stored = [hmac.new(PEPPER.encode(), bytes.fromhex(h), hashlib.sha256).digest() for h in batch]
                await conn.fetch(
                    "SELECT i.hash, d.user_id, d.display_name FROM friends.identities i JOIN friends.directory d USING (user_id) "
                    "WHERE i.hash = ANY($1::bytea[]) AND d.discoverable", stored,
                )
                match_raw.append((time.perf_counter() - t) * 1000)
        await pool.close()

        print(f"Seeded {ENTRIES:,} entries across {CONTACTS} contacts (+{len(peers) * 200:,} entries by 5 trusted peers) in {seed_ledger_s:.1f} s; "
              f"{USERS:,} discoverable users with a phone identity in {seed_users_s:.1f} s. Balances answer: {len(items)} (contact, currency) rows; "
              f"match answer: {found} of {BATCH:,} hashes matched (expected {len(hits)}). "
              f"The totals table equals the GROUP BY over all entries (checked). {state}.\n")
        print("| measurement | runs | p50 ms | p90 ms | p99 ms | target |")
        print("|---|---|---|---|---|---|")
        print(row("GET /v1/ledger/balances (HTTP, ledger → friends peers → SQL)", api, "p50 ≤ 20 ms"))
        print(row("same two ledger.totals queries (own + peers), raw asyncpg", raw))
        print(row("  part of it: friends /internal/.../ledger-peers (HTTP, Redis-cached)", peers_http))
        print(row("  HTTP floor: ledger GET /healthz", floor))
        print(row("GROUP BY over all entries, raw asyncpg (baseline)", raw_naive))
        print(row(f"POST /v1/friends/contacts:match, {BATCH:,} hashes vs {USERS:,} users (HTTP)", match_api, "p50 ≤ 150 ms"))
        print(row(f"same {BATCH:,} HMACs + lookup, raw asyncpg", match_raw))
        print(f"\nBalances: HTTP p50 is {statistics.median(api) / statistics.median(raw):.2f}x the raw totals SQL and "
              f"{statistics.median(api) / statistics.median(raw_naive):.2f}x the raw GROUP BY; "
              f"contact match: {statistics.median(match_api) / statistics.median(match_raw):.2f}x the raw lookup at p50.")
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
        if redis_proc is not None:
            redis_proc.terminate()
        if pg is not None:
            pg.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
