"""The semantic half of search is exact per user, whatever else the table holds. Guards the
trap bench.py showed: with pgvector 0.6, for a user owning 1,000 of 20,000 rows the planner
picks the HNSW index for a plain `WHERE user_id = … ORDER BY embedding <=> …` and
post-filters its ef_search candidates (a handful of the user's notes instead of the top 50).
At this test's size the planner happens to choose well; the assertion holds either way."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import numpy as np
from eindr_notes import repository
from pgvector.asyncpg import register_vector


def test_per_user_semantic_top_k_is_exact_among_many_other_users(postgres_url, notes_api, db):
    rng = np.random.default_rng(3)
    me, others = "scale-" + uuid.uuid4().hex[:8], "scale-others-" + uuid.uuid4().hex[:8]
    vecs = rng.standard_normal((3000, 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    owners = [me if i % 20 == 0 else others for i in range(len(vecs))]  # 150 mine, 5 %
    ids = [uuid.uuid4() for _ in vecs]
    q = vecs[0] + 0.1 * rng.standard_normal(384).astype(np.float32)
    q /= np.linalg.norm(q)

    async def run() -> list[str]:
        conn = await asyncpg.connect(postgres_url)  # no command timeout: HNSW inserts are slow
        await register_vector(conn)
        try:
            await conn.copy_records_to_table(
                "notes", schema_name="notes", columns=["id", "user_id", "body", "status", "embedding"],
                records=[(ids[i], owners[i], f"n{i}", "ready", vecs[i]) for i in range(len(vecs))],
            )
            await conn.execute("ANALYZE notes.notes")
            semantic, _, _ = await repository.search_candidates(
                conn, me, "anything", q, candidates=50, max_distance=2.0, ef_search=100)
            return semantic
        finally:
            await conn.close()

    try:
        semantic = asyncio.run(run())
        mine = [i for i in range(len(vecs)) if owners[i] == me]
        truth = sorted(mine, key=lambda i: float(1 - vecs[i] @ q))[:50]
        assert semantic == [str(ids[i]) for i in truth]
    finally:
        db.execute("DELETE FROM notes.notes WHERE user_id IN (%s, %s)", (me, others))
