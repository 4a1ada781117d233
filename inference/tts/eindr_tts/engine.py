"""The voice catalogue over every engine, voice choice, and synthesis behind a bounded queue."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from eindr_common.errors import BadRequest, ServiceUnavailable
from prometheus_client import Gauge, Histogram, Info

from .config import TTSSettings
from .encoding import Encoder
from .engines import (
    CoquiEngine,
    Engine,
    EspeakEngine,
    PiperEngine,
    Voice,
    packaged_piper_voice,
    split_first_clause,
    split_sentences,
)

log = logging.getLogger("eindr.tts")

INFERENCE_SECONDS = Histogram(
    "eindr_tts_inference_seconds",
    "Time to synthesise one sentence",
    ["engine"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2, 5, 10),
)
FIRST_CHUNK_SECONDS = Histogram(
    "eindr_tts_first_chunk_seconds",
    "Time from admission to the first audio bytes",
    ["engine"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2, 5),
)
BATCH_SIZE = Histogram(
    "eindr_tts_batch_size",
    "Sentences per synthesis call (always 1: sentence streaming)",
    buckets=(1, 2, 4),
)
QUEUE_DEPTH = Gauge("eindr_tts_queue_depth", "Requests admitted and not finished")
MODEL_INFO = Info("eindr_tts_model", "Engines and default voice of this server")

# OpenAI's voice names: accepted as "the default voice for the language".
OPENAI_VOICES = {
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "fable",
    "onyx",
    "nova",
    "sage",
    "shimmer",
    "verse",
}
OPENAI_MODELS = {"tts-1", "tts-1-hd", "gpt-4o-mini-tts"}
ENGINE_PREFERENCE = ("piper", "coqui", "espeak")


class TTSEngine:
    def __init__(self, settings: TTSSettings) -> None:
        self.settings = settings
        self.engines: dict[str, Engine] = {}
        piper_paths = (
            [Path(p.strip()) for p in settings.tts_piper_voices.split(",") if p.strip()]
            if settings.tts_piper_voices
            else [packaged_piper_voice()]
        )
        self.engines["piper"] = PiperEngine(piper_paths)
        if settings.tts_coqui_model:
            self.engines["coqui"] = CoquiEngine(
                Path(settings.tts_coqui_model),
                settings.tts_coqui_language,
                settings.tts_coqui_device,
            )
        if settings.tts_espeak_enabled:
            self.engines["espeak"] = EspeakEngine(settings.tts_espeak_binary)
        self.voices: dict[str, Voice] = {}
        for name in ENGINE_PREFERENCE:
            if name in self.engines:
                for v in self.engines[name].voices():
                    self.voices.setdefault(v.id, v)
        if settings.tts_default_voice not in self.voices:
            raise RuntimeError(
                f"EINDR_TTS_DEFAULT_VOICE={settings.tts_default_voice!r} is not among the voices"
            )
        self.executor = ThreadPoolExecutor(
            max_workers=settings.tts_workers, thread_name_prefix="tts"
        )
        self.admitted = 0
        self.ready = False
        MODEL_INFO.info(
            {
                "engines": ",".join(self.engines),
                "default_voice": settings.tts_default_voice,
                "voices": str(len(self.voices)),
            }
        )

    def warm_up(self) -> None:
        for name, engine in self.engines.items():
            voice = (
                self.voices[self.settings.tts_default_voice]
                if name == "piper"
                else engine.voices()[0]
            )
            engine.synthesize("Ready.", voice, 1.0)
        self.ready = True

    # --- choosing a voice ------------------------------------------------------------------

    def by_language(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for v in self.voices.values():
            out.setdefault(v.primary_language, []).append(v.id)
        return out

    def choose(
        self, voice: str | None, language: str | None, model: str | None
    ) -> Voice:
        engine_filter: str | None = None
        if model and model not in OPENAI_MODELS:
            if model not in self.engines:
                raise BadRequest(
                    f"Unknown model {model!r}: use one of {sorted(self.engines) + sorted(OPENAI_MODELS)}.",
                    code="unknown_model",
                )
            engine_filter = model
        if voice and voice not in OPENAI_VOICES:
            chosen = self.voices.get(voice)
            if chosen is None:
                raise BadRequest(
                    f"Unknown voice {voice!r}; GET /v1/voices lists them.",
                    code="unknown_voice",
                )
            if engine_filter and chosen.engine != engine_filter:
                raise BadRequest(
                    f"Voice {voice!r} belongs to engine {chosen.engine!r}, not {model!r}.",
                    code="voice_model_mismatch",
                )
            return chosen
        if language:
            lang = language.replace("_", "-").lower()
            primary = lang.split("-")[0]
            candidates = [
                v
                for v in self.voices.values()
                if not engine_filter or v.engine == engine_filter
            ]
            for name in ENGINE_PREFERENCE:
                exact = [
                    v
                    for v in candidates
                    if v.engine == name and v.language.lower() == lang
                ]
                if exact:
                    return exact[0]
                loose = [
                    v
                    for v in candidates
                    if v.engine == name and v.primary_language == primary
                ]
                if loose:
                    return min(loose, key=lambda v: v.rank)
            raise BadRequest(
                f"No voice speaks {language!r}; GET /v1/voices lists languages.",
                code="unsupported_language",
            )
        default = self.voices[self.settings.tts_default_voice]
        if engine_filter and default.engine != engine_filter:
            # the engine's voice for the default voice's language, else its first voice
            same = [
                v
                for v in self.engines[engine_filter].voices()
                if v.primary_language == default.primary_language
            ]
            return (same or self.engines[engine_filter].voices())[0]
        return default

    # --- synthesis ---------------------------------------------------------------------------

    def admit(self) -> None:
        if self.admitted >= self.settings.tts_max_queue:
            raise ServiceUnavailable(
                "The synthesis queue is full; retry shortly.",
                code="overloaded",
                headers={"Retry-After": "1"},
            )
        self.admitted += 1
        QUEUE_DEPTH.set(self.admitted)

    def release(self) -> None:
        self.admitted -= 1
        QUEUE_DEPTH.set(self.admitted)

    def _synth(self, sentence: str, voice: Voice, speed: float) -> np.ndarray:
        started = time.perf_counter()
        samples = self.engines[voice.engine].synthesize(sentence, voice, speed)
        INFERENCE_SECONDS.labels(voice.engine).observe(time.perf_counter() - started)
        BATCH_SIZE.observe(1)
        return samples

    async def stream(
        self, text: str, voice: Voice, speed: float, fmt: str
    ) -> AsyncIterator[bytes]:
        """Encoded audio, one chunk per sentence; the caller has admitted the request."""
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        encoder = Encoder(fmt, voice.sample_rate)
        sentences = split_sentences(text)
        if self.settings.tts_split_first_clause:
            sentences = split_first_clause(sentences[0]) + sentences[1:]
        first = True
        try:
            # the next sentence renders while the current one is being sent
            pending = loop.run_in_executor(
                self.executor, self._synth, sentences[0], voice, speed
            )
            for i in range(len(sentences)):
                samples = await pending
                if i + 1 < len(sentences):
                    pending = loop.run_in_executor(
                        self.executor, self._synth, sentences[i + 1], voice, speed
                    )
                chunk = encoder.encode(samples)
                if chunk:
                    if first:
                        FIRST_CHUNK_SECONDS.labels(voice.engine).observe(
                            time.perf_counter() - started
                        )
                        first = False
                    yield chunk
            tail = encoder.finish()
            if tail:
                yield tail
        finally:
            self.release()

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
