"""The chat server end to end: TGI protocol over real HTTP, the TGI client and LangChain's
HuggingFaceEndpoint unchanged, a Bloom checkpoint loaded through the production path."""

from __future__ import annotations

import concurrent.futures as cf
import json
import re

import httpx
import pytest

# one xdist worker per component: its model server starts once
pytestmark = pytest.mark.xdist_group("inference-chat")


PROMPTS = [
    "Remind me to",
    "Ali owes you",
    "The meeting with Sarah is on",
    "Hello! How can I",
    "I saved your note: the wifi",
]


def assert_problem(resp: httpx.Response, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["code"] == code and body["error"] and body["error_type"]
    return body


def gen(client: httpx.Client, inputs: str, **params) -> dict:
    resp = client.post("/generate", json={"inputs": inputs, "parameters": params})
    assert resp.status_code == 200, resp.text
    return resp.json()


# --- correctness against transformers --------------------------------------------------------


def test_greedy_matches_transformers_generate(client, reference):
    for prompt in PROMPTS[:3]:
        body = gen(client, prompt, max_new_tokens=8, details=True)
        ids = [t["id"] for t in body["details"]["tokens"]]
        assert ids == reference(prompt, 8)[: len(ids)]
        assert body["details"]["finish_reason"] in ("length", "eos_token")


def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(client):
    solo = {p: gen(client, p, max_new_tokens=6)["generated_text"] for p in PROMPTS}

    def batch_stats() -> tuple[float, float]:
        text = client.get("/metrics").text
        s = float(
            re.search(r"^eindr_chat_batch_size_sum (\S+)$", text, re.MULTILINE).group(1)
        )
        c = float(
            re.search(r"^eindr_chat_batch_size_count (\S+)$", text, re.MULTILINE).group(
                1
            )
        )
        return s, c

    before = batch_stats()
    with cf.ThreadPoolExecutor(len(PROMPTS) * 2) as pool:
        results = list(
            pool.map(
                lambda p: gen(client, p, max_new_tokens=6)["generated_text"],
                PROMPTS * 2,
            )
        )
    after = batch_stats()
    assert results == [solo[p] for p in PROMPTS * 2]  # left padding changes nothing
    requests, batches = after[0] - before[0], after[1] - before[1]
    assert requests == 10 and batches < 10


def test_seeded_sampling_is_reproducible(client):
    a = gen(
        client,
        "Remind me to",
        do_sample=True,
        seed=42,
        temperature=0.9,
        top_k=50,
        top_p=0.95,
        max_new_tokens=10,
        details=True,
    )
    b = gen(
        client,
        "Remind me to",
        do_sample=True,
        seed=42,
        temperature=0.9,
        top_k=50,
        top_p=0.95,
        max_new_tokens=10,
        details=True,
    )
    assert a["generated_text"] == b["generated_text"] and a["details"]["seed"] == 42
    unseeded = gen(
        client, "Remind me to", do_sample=True, max_new_tokens=4, details=True
    )
    assert isinstance(unseeded["details"]["seed"], int)
    greedy = gen(client, "Remind me to", max_new_tokens=4, details=True)
    assert greedy["details"]["seed"] is None


def test_stop_sequence_ends_generation(client):
    first = gen(client, "Ali owes you", max_new_tokens=10, details=True)
    tokens = first["details"]["tokens"]
    stop = next(t["text"] for t in tokens[2:] if t["text"].strip())
    body = gen(client, "Ali owes you", max_new_tokens=10, stop=[stop], details=True)
    assert body["details"]["finish_reason"] == "stop_sequence"
    assert body["generated_text"].endswith(stop)
    assert body["details"]["generated_tokens"] < 10


def test_full_text_prefill_and_top_tokens(client):
    body = gen(
        client,
        "Remind me to",
        max_new_tokens=3,
        return_full_text=True,
        decoder_input_details=True,
        top_n_tokens=2,
        details=True,
    )
    assert body["generated_text"].startswith("Remind me to")
    prefill = body["details"]["prefill"]
    assert prefill[0]["logprob"] is None and all(p["logprob"] < 0 for p in prefill[1:])
    assert "".join(p["text"] for p in prefill) == "Remind me to"
    assert len(body["details"]["top_tokens"]) == 3 and all(
        len(t) == 2 for t in body["details"]["top_tokens"]
    )
    # the greedy token is the most likely one
    assert (
        body["details"]["tokens"][0]["id"] == body["details"]["top_tokens"][0][0]["id"]
    )


# --- the protocol: TGI client, LangChain, SSE, compat route ----------------------------------


def test_text_generation_client(chat_server):
    from text_generation import Client

    client = Client(chat_server, timeout=60)
    resp = client.generate("Remind me to", max_new_tokens=5)
    assert (
        resp.details.generated_tokens == 5
        and resp.details.finish_reason.value == "length"
    )
    assert resp.generated_text == "".join(t.text for t in resp.details.tokens)
    events = list(client.generate_stream("Remind me to", max_new_tokens=5))
    assert len(events) == 5
    assert (
        all(e.details is None for e in events[:-1])
        and events[-1].details.generated_tokens == 5
    )
    assert (
        events[-1].generated_text
        == resp.generated_text
        == "".join(e.token.text for e in events)
    )


def test_text_generation_client_sees_validation_errors(chat_server):
    from text_generation import Client
    from text_generation.errors import ValidationError

    with pytest.raises(ValidationError):
        Client(chat_server).generate("Remind me to", max_new_tokens=100_000)


@pytest.mark.asyncio
async def test_text_generation_async_client(chat_server):
    from text_generation import AsyncClient

    client = AsyncClient(chat_server, timeout=60)
    resp = await client.generate("Hello! How can I", max_new_tokens=4)
    assert resp.details.generated_tokens == 4
    tokens = [
        e async for e in client.generate_stream("Hello! How can I", max_new_tokens=4)
    ]
    assert tokens[-1].generated_text == resp.generated_text


def test_langchain_huggingface_endpoint(chat_server):
    from langchain_huggingface import HuggingFaceEndpoint

    # LangChain's defaults sample (temperature 0.8, top_p/typical_p 0.95): a seed makes it repeatable
    llm = HuggingFaceEndpoint(
        endpoint_url=chat_server, max_new_tokens=6, seed=7, timeout=60
    )
    text = llm.invoke("Remind me to")
    assert isinstance(text, str) and text
    chunks = list(llm.stream("Remind me to"))
    assert "".join(chunks) == text


def test_generate_stream_sse_shape(client):
    with client.stream(
        "POST",
        "/generate_stream",
        json={"inputs": "Remind me to", "parameters": {"max_new_tokens": 4}},
    ) as resp:
        assert resp.status_code == 200 and resp.headers["content-type"].startswith(
            "text/event-stream"
        )
        events = [
            json.loads(line[len("data:") :])
            for line in resp.iter_lines()
            if line.startswith("data:")
        ]
    assert [e["index"] for e in events] == [1, 2, 3, 4]
    assert all(e["generated_text"] is None for e in events[:-1])
    last = events[-1]
    assert (
        last["details"]["finish_reason"] == "length"
        and last["details"]["input_length"] > 0
    )
    assert last["generated_text"] == "".join(e["token"]["text"] for e in events)


def test_compat_route_is_routed_by_stream(client):
    listed = client.post(
        "/", json={"inputs": "Remind me to", "parameters": {"max_new_tokens": 3}}
    )
    assert isinstance(listed.json(), list) and listed.json()[0]["generated_text"]
    streamed = client.post(
        "/",
        json={
            "inputs": "Remind me to",
            "parameters": {"max_new_tokens": 3},
            "stream": True,
        },
    )
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert streamed.text.count("data:") == 3


def test_info_and_health(client, checkpoint):
    info = client.get("/info").json()
    assert (
        info["model_id"] == checkpoint.name
        and info["model_pipeline_tag"] == "text-generation"
    )
    assert info["model_device_type"] == "cpu" and info["model_dtype"] == "float32"
    assert info["max_total_tokens"] == 2048
    assert client.get("/health").status_code == 200
    assert client.get("/readyz").json()["checks"] == {"model": "ok"}
    metrics = client.get("/metrics").text
    for name in (
        "eindr_chat_inference_seconds_count",
        "eindr_chat_batch_size_count",
        "eindr_chat_queue_depth",
        "eindr_chat_model_info",
    ):
        assert name in metrics


# --- bad input ------------------------------------------------------------------------------


def test_bad_requests_are_400_problems(client):
    post = lambda body: client.post("/generate", json=body)
    assert_problem(post({"inputs": "", "parameters": {}}), 400, "empty_input")
    assert_problem(post({"inputs": "x" * 4001}), 400, "input_too_long")
    body = assert_problem(
        post({"inputs": "hi", "parameters": {"temperature": 0}}),
        400,
        "validation_error",
    )
    assert body["errors"][0]["field"] == "parameters.temperature"
    assert_problem(
        post({"inputs": "hi", "parameters": {"top_p": 1.5}}), 400, "validation_error"
    )
    assert_problem(
        post({"inputs": "hi", "parameters": {"max_new_tokens": 5000}}),
        400,
        "invalid_generation_request",
    )
    assert_problem(
        post({"inputs": "hi", "parameters": {"best_of": 2, "do_sample": True}}),
        400,
        "unsupported_parameter",
    )
    assert_problem(
        post({"inputs": "hi", "parameters": {"stop": ["a", "b", "c", "d", "e"]}}),
        400,
        "too_many_stop_sequences",
    )
    assert_problem(post({"parameters": {}}), 400, "validation_error")
    resp = client.post(
        "/generate", content=b"{oops", headers={"content-type": "application/json"}
    )
    assert_problem(resp, 400, "validation_error")
    assert_problem(
        client.post("/generate_stream", json={"inputs": "  "}), 400, "empty_input"
    )


def test_overload_is_503_with_retry_after(single_slot_server):
    with (
        httpx.Client(base_url=single_slot_server, timeout=120) as c,
        cf.ThreadPoolExecutor(4) as pool,
    ):
        responses = list(
            pool.map(
                lambda _: c.post(
                    "/generate",
                    json={
                        "inputs": "Remind me to",
                        "parameters": {"max_new_tokens": 512},
                    },
                ),
                range(4),
            )
        )
    statuses = [r.status_code for r in responses]
    assert 200 in statuses and 503 in statuses and set(statuses) <= {200, 503}
    for r in responses:
        if r.status_code == 503:
            assert_problem(r, 503, "overloaded")
            assert r.headers["retry-after"] == "1"


def test_loader_refuses_a_directory_that_is_not_a_checkpoint(tmp_path):
    from eindr_chat.config import ChatSettings
    from eindr_chat.engine import ChatEngine, ModelLoadError, load_model

    with pytest.raises(ModelLoadError, match="no config.json"):
        load_model(tmp_path)
    with pytest.raises(ModelLoadError, match="EINDR_CHAT_MODEL is not set"):
        ChatEngine(ChatSettings(chat_model=None))


def test_loader_reads_the_checkpoint_as_bloom(checkpoint):
    from eindr_chat.engine import load_model

    model, tokenizer, device, dtype = load_model(checkpoint, "cpu", "auto")
    assert type(model).__name__ == "BloomForCausalLM" and model.config.n_layer == 2
    assert tokenizer.padding_side == "left" and tokenizer.eos_token == "</s>"
    assert device == "cpu" and str(dtype) == "torch.float32"
