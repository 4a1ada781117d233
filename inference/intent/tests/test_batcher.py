"""The micro-batcher itself, in-process with the real MiniLM: which requests share a forward
pass. The encoder thread is held on a gate so the order of events is fixed, not timed."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import numpy as np
import pytest
from eindr_common.errors import ServiceUnavailable
from eindr_intent.config import IntentSettings
from eindr_intent.engine import Embedder, MicroBatcher
from prometheus_client import REGISTRY

pytestmark = pytest.mark.xdist_group("inference-intent")


@pytest.fixture(scope="module")
def embedder() -> Iterator[Embedder]:
    yield Embedder(IntentSettings(intent_device="cpu"))


def batches_so_far() -> tuple[float, float]:
    """(texts, forward passes) recorded by the batch-size histogram."""
    return (
        REGISTRY.get_sample_value("eindr_intent_batch_size_sum") or 0.0,
        REGISTRY.get_sample_value("eindr_intent_batch_size_count") or 0.0,
    )


async def until(condition) -> None:
    while not condition():
        await asyncio.sleep(0)


def hold_encoder(batcher: MicroBatcher) -> threading.Event:
    """Occupy the single encoder thread until the returned gate is set: a pass the batcher
    starts meanwhile stays running (as far as it knows) until then."""
    gate = threading.Event()
    batcher.executor.submit(gate.wait)
    return gate


async def test_requests_queued_during_a_pass_share_the_next_one(embedder):
    # No window: what is batched together is only what queued while the encoder was busy.
    batcher = MicroBatcher(embedder, window_ms=0, max_batch=64, max_queue=64)
    batcher.start()
    try:
        gate = hold_encoder(batcher)
        before = batches_so_far()
        first = asyncio.ensure_future(batcher.embed(["remind me to call mum"]))
        await until(lambda: not batcher.jobs and batcher.in_flight)
        texts = ["Ali owes me twenty dollars", "note the wifi password", "hello there"]
        rest = [asyncio.ensure_future(batcher.embed([t])) for t in texts]
        await until(lambda: len(batcher.jobs) == 3)
        gate.set()
        got = [await first] + [await r for r in rest]
        texts_done, passes = np.subtract(batches_so_far(), before)
        assert (texts_done, passes) == (4, 2), "the three waiting texts go in one pass"
        expected = embedder.encode(["remind me to call mum", *texts])
        assert np.allclose(np.vstack(got), expected, atol=1e-4)
        assert batcher.waiting_texts == 0
    finally:
        await batcher.stop()


async def test_next_pass_takes_at_most_max_batch_texts(embedder):
    batcher = MicroBatcher(embedder, window_ms=0, max_batch=4, max_queue=64)
    batcher.start()
    try:
        gate = hold_encoder(batcher)
        before = batches_so_far()
        first = asyncio.ensure_future(batcher.embed(["one"]))
        await until(lambda: not batcher.jobs and batcher.in_flight)
        # 3 + 2 texts: together over max_batch, so the second request waits a pass.
        a = asyncio.ensure_future(batcher.embed(["two", "three", "four"]))
        b = asyncio.ensure_future(batcher.embed(["five", "six"]))
        await until(lambda: len(batcher.jobs) == 2)
        gate.set()
        assert [len(v) for v in (await first, await a, await b)] == [1, 3, 2]
        assert tuple(np.subtract(batches_so_far(), before)) == (6, 3)
    finally:
        await batcher.stop()


async def test_a_request_whose_caller_left_is_not_encoded(embedder):
    batcher = MicroBatcher(embedder, window_ms=0, max_batch=64, max_queue=64)
    batcher.start()
    try:
        gate = hold_encoder(batcher)
        before = batches_so_far()
        first = asyncio.ensure_future(batcher.embed(["one"]))
        await until(lambda: not batcher.jobs and batcher.in_flight)
        gone = asyncio.ensure_future(batcher.embed(["two", "three"]))
        kept = asyncio.ensure_future(batcher.embed(["four"]))
        await until(lambda: len(batcher.jobs) == 2)
        gone.cancel()  # what Starlette does to a request whose client disconnected
        gate.set()
        await first
        assert len(await kept) == 1
        with pytest.raises(asyncio.CancelledError):
            await gone
        assert tuple(np.subtract(batches_so_far(), before)) == (2, 2)
        assert batcher.waiting_texts == 0, "the queue bound counts only live requests"
    finally:
        await batcher.stop()


async def test_stop_answers_every_request_still_waiting(embedder):
    batcher = MicroBatcher(embedder, window_ms=0, max_batch=64, max_queue=64)
    batcher.start()
    gate = hold_encoder(batcher)
    try:
        running = asyncio.ensure_future(batcher.embed(["one"]))
        await until(lambda: not batcher.jobs and batcher.in_flight)
        queued = asyncio.ensure_future(batcher.embed(["two"]))
        await until(lambda: len(batcher.jobs) == 1)
        await batcher.stop()
        for request in (running, queued):
            with pytest.raises(ServiceUnavailable):
                await request
    finally:
        gate.set()
