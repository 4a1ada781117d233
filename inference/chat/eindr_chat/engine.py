"""Model loading and batched generation for Bloom checkpoints (transformers).

A scheduler thread gathers the requests that arrive within a short window (up to
``max_batch_size``), left-pads them into one batch and decodes them together, token by
token, with a KV cache. Each row keeps its own sampling parameters, seed, stop
sequences and length, and streams its tokens to its own client as they are chosen."""

from __future__ import annotations

import asyncio
import logging
import queue
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, Info

from .config import ChatSettings
from .schemas import Parameters

log = logging.getLogger("eindr.chat")

STEP_SECONDS = Histogram(
    "eindr_chat_decode_step_seconds",
    "Time of one batched decoding step",
    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2),
)
REQUEST_SECONDS = Histogram(
    "eindr_chat_inference_seconds",
    "Time from admission to the last token of a request",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
BATCH_SIZE = Histogram(
    "eindr_chat_batch_size", "Requests decoded together", buckets=(1, 2, 4, 8, 16, 32)
)
QUEUE_DEPTH = Gauge(
    "eindr_chat_queue_depth", "Requests admitted and not finished (running + waiting)"
)
TOKENS = Counter("eindr_chat_generated_tokens_total", "Tokens generated")
MODEL_INFO = Info("eindr_chat_model", "The model this server runs")


class ModelLoadError(RuntimeError):
    pass


def load_model(
    path: str | Path, device: str = "auto", dtype: str = "auto"
) -> tuple[Any, Any, str, Any]:
    """Load a causal LM checkpoint directory (Bloom) and its tokenizer, never from a hub."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"{path} is not a checkpoint directory (no config.json)")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    torch_dtype = {
        "auto": torch.float16 if device == "cuda" else torch.float32,
        "float32": torch.float32,
        "float16": torch.float16,
        "bfloat16": torch.bfloat16,
    }[dtype]
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(
        str(path), local_files_only=True, dtype=torch_dtype
    )
    model.to(device).eval()
    return model, tokenizer, device, torch_dtype


@dataclass
class Job:
    prompt_ids: list[int]
    params: Parameters
    max_new_tokens: int
    seed: int | None
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue
    admitted_at: float = field(default_factory=time.perf_counter)
    cancelled: threading.Event = field(default_factory=threading.Event)

    def emit(self, kind: str, payload: Any) -> None:
        self.loop.call_soon_threadsafe(self.events.put_nowait, (kind, payload))


class ChatEngine:
    def __init__(self, settings: ChatSettings) -> None:
        import torch

        if not settings.chat_model:
            raise ModelLoadError(
                "EINDR_CHAT_MODEL is not set: point it at a Bloom checkpoint directory"
            )
        if settings.chat_cpu_threads:
            torch.set_num_threads(settings.chat_cpu_threads)
        self.settings = settings
        self.torch = torch
        self.model, self.tokenizer, self.device, self.dtype = load_model(
            settings.chat_model, settings.chat_device, settings.chat_dtype
        )
        self.model_id = settings.chat_model_name or Path(settings.chat_model).name
        self.eos_id = self.tokenizer.eos_token_id
        self.pad_id = self.tokenizer.pad_token_id
        self.special_ids = set(self.tokenizer.all_special_ids)
        self.inbox: queue.Queue[Job | None] = queue.Queue()
        self.admitted = 0
        self.lock = threading.Lock()
        self.ready = False
        self.thread = threading.Thread(
            target=self._scheduler, name="chat-scheduler", daemon=True
        )
        MODEL_INFO.info(
            {
                "model": self.model_id,
                "device": self.device,
                "dtype": str(self.dtype).removeprefix("torch."),
            }
        )

    # --- admission -----------------------------------------------------------------------

    def try_admit(self) -> bool:
        with self.lock:
            if self.admitted >= self.settings.chat_max_concurrent_requests:
                return False
            self.admitted += 1
            QUEUE_DEPTH.set(self.admitted)
            return True

    def release(self) -> None:
        with self.lock:
            self.admitted -= 1
            QUEUE_DEPTH.set(self.admitted)

    def submit(self, job: Job) -> None:
        self.inbox.put(job)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.inbox.put(None)
        self.thread.join(timeout=10)

    def warm_up(self) -> None:
        ids = self.tokenizer("Hello", return_tensors="pt").input_ids.to(self.device)
        with self.torch.inference_mode():
            self.model(input_ids=ids)
        self.ready = True

    # --- scheduling ------------------------------------------------------------------------

    def _scheduler(self) -> None:
        window = self.settings.chat_batch_window_ms / 1000
        while True:
            job = self.inbox.get()
            if job is None:
                return
            batch = [job]
            deadline = time.monotonic() + window
            while len(batch) < self.settings.chat_max_batch_size:
                remaining = deadline - time.monotonic()
                try:
                    nxt = (
                        self.inbox.get(timeout=max(remaining, 0))
                        if remaining > 0
                        else self.inbox.get_nowait()
                    )
                except queue.Empty:
                    break
                if nxt is None:
                    self.inbox.put(None)
                    break
                batch.append(nxt)
            batch = [j for j in batch if not j.cancelled.is_set()] or []
            if not batch:
                continue
            try:
                self.generate_batch(batch)
            except Exception as exc:  # every row of the batch gets the error
                log.exception("generation failed")
                for j in batch:
                    j.emit("error", str(exc))

    # --- decoding ----------------------------------------------------------------------------

    def _process_logits(
        self, logits, job: Job, history: list[int], generated: list[int]
    ):
        torch = self.torch
        p = job.params
        row = logits.unsqueeze(0)
        if p.repetition_penalty and p.repetition_penalty != 1.0:
            ids = torch.tensor([history], device=row.device)
            score = torch.gather(row, 1, ids)
            score = torch.where(
                score < 0, score * p.repetition_penalty, score / p.repetition_penalty
            )
            row = row.scatter(1, ids, score)
        if p.frequency_penalty and generated:
            counts = torch.bincount(
                torch.tensor(generated, device=row.device), minlength=row.shape[-1]
            ).to(row.dtype)
            row = row - p.frequency_penalty * counts.unsqueeze(0)
        return row

    def _sample(self, row, job: Job, generator):
        torch = self.torch
        p = job.params
        if not self._sampling(p):
            return int(row.argmax(-1).item())
        if p.temperature and p.temperature != 1.0:
            row = row / p.temperature
        if p.top_k:
            k = min(p.top_k, row.shape[-1])
            kth = torch.topk(row, k).values[..., -1, None]
            row = row.masked_fill(row < kth, float("-inf"))
        if p.typical_p:
            logp = torch.log_softmax(row, -1)
            ent = -(logp.exp() * logp).nansum(-1, keepdim=True)
            shifted = (-logp - ent).abs()
            sorted_s, idx = torch.sort(shifted)
            cum = logp.gather(-1, idx).exp().cumsum(-1)
            last = (
                (cum < p.typical_p).sum(-1, keepdim=True).clamp(max=row.shape[-1] - 1)
            )
            remove_sorted = sorted_s > sorted_s.gather(-1, last)
            row = row.masked_fill(
                remove_sorted.scatter(1, idx, remove_sorted), float("-inf")
            )
        if p.top_p and p.top_p < 1.0:
            sorted_logits, idx = torch.sort(row, descending=True)
            cum = torch.softmax(sorted_logits, -1).cumsum(-1)
            remove = cum - torch.softmax(sorted_logits, -1) >= p.top_p
            row = row.masked_fill(remove.scatter(1, idx, remove), float("-inf"))
        probs = torch.softmax(row.float(), -1)
        return int(torch.multinomial(probs, 1, generator=generator).item())

    @staticmethod
    def _sampling(p: Parameters) -> bool:
        return bool(
            p.do_sample
            or (p.temperature and p.temperature != 1.0)
            or p.top_k
            or p.top_p
            or p.typical_p
        )

    def generate_batch(self, jobs: list[Job]) -> None:
        torch = self.torch
        n = len(jobs)
        BATCH_SIZE.observe(n)
        width = max(len(j.prompt_ids) for j in jobs)
        input_ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((n, width), dtype=torch.long)
        for i, j in enumerate(jobs):
            input_ids[i, width - len(j.prompt_ids) :] = torch.tensor(j.prompt_ids)
            attention[i, width - len(j.prompt_ids) :] = 1
        input_ids, attention = input_ids.to(self.device), attention.to(self.device)
        generators = []
        for j in jobs:
            g = torch.Generator(device=self.device)
            g.manual_seed(j.seed if j.seed is not None else 0)
            generators.append(g)
        generated: list[list[int]] = [[] for _ in jobs]
        texts = [""] * n
        finished = [False] * n
        past = None
        cur = input_ids
        steps = max(j.max_new_tokens for j in jobs)
        with torch.inference_mode():
            for step in range(steps):
                started = time.perf_counter()
                out = self.model(
                    input_ids=cur,
                    attention_mask=attention,
                    past_key_values=past,
                    use_cache=True,
                )
                past = out.past_key_values
                logits = out.logits[:, -1, :].float()
                if step == 0:
                    self._emit_prefill(jobs, out.logits, input_ids, attention)
                logprobs = torch.log_softmax(logits, -1)
                next_ids = []
                for i, j in enumerate(jobs):
                    if finished[i] or j.cancelled.is_set():
                        finished[i] = True
                        next_ids.append(self.pad_id)
                        continue
                    row = self._process_logits(
                        logits[i], j, j.prompt_ids + generated[i], generated[i]
                    )
                    tok = self._sample(row, j, generators[i])
                    generated[i].append(tok)
                    TOKENS.inc()
                    full = self.tokenizer.decode(
                        generated[i], skip_special_tokens=False
                    )
                    prev_len = len(texts[i])
                    last = tok == self.eos_id or len(generated[i]) >= j.max_new_tokens
                    if full.endswith("\ufffd") and not last:
                        piece = ""  # an incomplete UTF-8 sequence: its text comes with the next token
                    else:
                        piece, texts[i] = full[prev_len:], full
                    token = {
                        "id": tok,
                        "text": piece,
                        "logprob": round(float(logprobs[i, tok]), 4),
                        "special": tok in self.special_ids,
                    }
                    top = None
                    if j.params.top_n_tokens:
                        vals, idx = torch.topk(logprobs[i], j.params.top_n_tokens)
                        top = [
                            {
                                "id": int(t),
                                "text": self.tokenizer.decode([int(t)]),
                                "logprob": round(float(v), 4),
                                "special": int(t) in self.special_ids,
                            }
                            for v, t in zip(vals, idx)
                        ]
                    reason = None
                    if tok == self.eos_id:
                        reason = "eos_token"
                    elif any(
                        s and s in texts[i][max(0, prev_len - len(s) + 1) :]
                        for s in j.params.stop
                    ):
                        reason = "stop_sequence"
                    elif len(generated[i]) >= j.max_new_tokens:
                        reason = "length"
                    j.emit("token", (token, top))
                    if reason:
                        finished[i] = True
                        text = self.tokenizer.decode(
                            generated[i], skip_special_tokens=True
                        )
                        j.emit(
                            "done",
                            {
                                "reason": reason,
                                "text": text,
                                "tokens": len(generated[i]),
                            },
                        )
                        REQUEST_SECONDS.observe(time.perf_counter() - j.admitted_at)
                    next_ids.append(tok)
                STEP_SECONDS.observe(time.perf_counter() - started)
                if all(finished):
                    break
                cur = torch.tensor(next_ids, device=self.device).unsqueeze(1)
                attention = torch.cat(
                    [
                        attention,
                        torch.ones((n, 1), dtype=attention.dtype, device=self.device),
                    ],
                    dim=1,
                )
        for i, j in enumerate(jobs):
            if not finished[i]:  # cancelled rows and safety net
                j.emit(
                    "done",
                    {
                        "reason": "length",
                        "text": self.tokenizer.decode(
                            generated[i], skip_special_tokens=True
                        ),
                        "tokens": len(generated[i]),
                    },
                )

    def _emit_prefill(self, jobs: list[Job], logits, input_ids, attention) -> None:
        torch = self.torch
        for i, j in enumerate(jobs):
            if not j.params.decoder_input_details:
                continue
            offset = input_ids.shape[1] - len(j.prompt_ids)
            lp = torch.log_softmax(logits[i, offset:-1].float(), -1)
            prefill = [
                {
                    "id": j.prompt_ids[0],
                    "text": self.tokenizer.decode([j.prompt_ids[0]]),
                    "logprob": None,
                }
            ]
            for k, tok in enumerate(j.prompt_ids[1:]):
                prefill.append(
                    {
                        "id": tok,
                        "text": self.tokenizer.decode([tok]),
                        "logprob": round(float(lp[k, tok]), 4),
                    }
                )
            j.emit("prefill", prefill)

    # --- request preparation -----------------------------------------------------------------

    def prepare(
        self, inputs: str, params: Parameters, loop: asyncio.AbstractEventLoop
    ) -> Job:
        """Validate against the model's limits and build a job (raises ValueError with a reason)."""
        s = self.settings
        ids = self.tokenizer(inputs, add_special_tokens=False).input_ids
        if params.truncate:
            ids = ids[-params.truncate :]
        if not ids:
            raise ValueError("`inputs` has no tokens")
        if len(ids) > s.chat_max_input_tokens:
            raise ValueError(
                f"`inputs` has {len(ids)} tokens; at most {s.chat_max_input_tokens} (or set `truncate`)"
            )
        max_new = params.max_new_tokens or min(100, s.chat_max_new_tokens)
        if max_new > s.chat_max_new_tokens:
            raise ValueError(f"`max_new_tokens` must be <= {s.chat_max_new_tokens}")
        if len(ids) + max_new > s.chat_max_total_tokens:
            raise ValueError(
                f"`inputs` tokens + `max_new_tokens` must be <= {s.chat_max_total_tokens}: "
                f"{len(ids)} + {max_new} = {len(ids) + max_new}"
            )
        seed = params.seed
        if seed is None and self._sampling(params):
            seed = random.getrandbits(63)
        return Job(
            prompt_ids=ids,
            params=params,
            max_new_tokens=max_new,
            seed=seed,
            loop=loop,
            events=asyncio.Queue(),
        )
