"""Settings of the STT server, read from ``EINDR_STT_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from eindr_common.settings import CommonSettings


class STTSettings(CommonSettings):
    # A CTranslate2 Whisper directory (model.bin, config.json, tokenizer.json, ...).
    # Unset: Whisper base from the packaged weights, assembled into ``stt_cache_dir``.
    stt_model: str | None = None
    stt_model_name: str = "whisper-base"
    stt_cache_dir: Path = Path.home() / ".cache" / "eindr" / "stt"
    stt_device: Literal["auto", "cpu", "cuda"] = "auto"
    # "default": int8 on CPU, float16 on GPU.
    stt_compute_type: str = "default"
    stt_cpu_threads: int = 2
    # Parallel transcriptions inside the model (CTranslate2 workers); more requests wait.
    stt_workers: int = 1
    # Requests admitted at once (running + waiting); beyond that: 503 + Retry-After.
    stt_max_queue: int = 8
    stt_beam_size: int = 1
    # OpenAI semantics (temperature 0 = greedy, then a fallback ladder of sampled retries
    # when the output looks degenerate). False: greedy only, so the same audio always gives
    # the same text (sampling is unseeded) — for tests and reproducible pipelines.
    stt_temperature_fallback: bool = True
    stt_vad_filter: bool = True
    stt_max_audio_seconds: float = 60.0
    stt_max_upload_bytes: int = 25 * 1024 * 1024


@lru_cache
def get_settings() -> STTSettings:
    return STTSettings()
