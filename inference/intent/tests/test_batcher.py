"""The micro-batcher itself, in-process with the real MiniLM: which requests share a forward
pass. The encoder thread is held on a gate so the order of events is fixed, not timed."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

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


@asynccontextmanager
async def encoder_busy_with(embedder, text: str, *, max_batch: int = 64) -> AsyncIterator[tuple]:
    """A started batcher without a window whose encoder is held mid-pass on ``text``: what
    is submitted meanwhile queues for the next pass, and runs once ``gate`` is set. Yields
    (batcher, gate, the first request, the batch histogram before it)."""
    batcher = MicroBatcher(embedder, window_ms=0, max_batch=max_batch, max_queue=64)
    batcher.start()
    gate = hold_encoder(batcher)
    try:
        before = batches_so_far()
        first = asyncio.ensure_future(batcher.embed([text]))
        await until(lambda: not batcher.jobs and batcher.in_flight)
        yield batcher, gate, first, before
    finally:
        gate.set()
        await batcher.stop()


async def test_requests_queued_during_a_pass_share_the_next_one(embedder):
    # No window: what is batched together is only what queued while the encoder was busy.
    async with encoder_busy_with(embedder, "remind me to call mum") as (batcher, gate, first, before):
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


async def test_next_pass_takes_at_most_max_batch_texts(embedder):
    async with encoder_busy_with(embedder, "one", max_batch=4) as (batcher, gate, first, before):
        # 3 + 2 texts: together over max_batch, so the second request waits a pass.
        a = asyncio.ensure_future(batcher.embed(["two", "three", "four"]))
        b = asyncio.ensure_future(batcher.embed(["five", "six"]))
        await until(lambda: len(batcher.jobs) == 2)
        gate.set()
        assert [len(v) for v in (await first, await a, await b)] == [1, 3, 2]
        assert tuple(np.subtract(batches_so_far(), before)) == (6, 3)


async def test_a_request_whose_caller_left_is_not_encoded(embedder):
    async with encoder_busy_with(embedder, "one") as (batcher, gate, first, before):
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


async def test_stop_answers_every_request_still_waiting(embedder):
    async with encoder_busy_with(embedder, "one") as (batcher, _gate, running, _before):
        queued = asyncio.ensure_future(batcher.embed(["two"]))
        await until(lambda: len(batcher.jobs) == 1)
        await batcher.stop()
        for request in (running, queued):
            with pytest.raises(ServiceUnavailable):
                await request
