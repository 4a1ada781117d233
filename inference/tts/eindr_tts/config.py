"""Settings of the TTS server, read from ``EINDR_TTS_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache

from eindr_common.settings import CommonSettings


class TTSSettings(CommonSettings):
    # Piper voices: comma-separated .onnx paths (their .onnx.json beside them); unset:
    # the packaged en_US-joe-medium.
    tts_piper_voices: str | None = None
    tts_espeak_enabled: bool = True
    tts_espeak_binary: str = "espeak-ng"
    # Coqui: a model directory (config.json + model .pth) loaded with coqui-tts; unset: off.
    tts_coqui_model: str | None = None
    tts_coqui_language: str = "en"
    tts_coqui_device: str = "auto"
    # The voice used when a request names neither a voice nor a language.
    tts_default_voice: str = "en_US-joe-medium"
    tts_max_input_chars: int = 4000
    # Synthesise the first clause of a long first sentence on its own (lower time to
    # first audio byte, at the cost of a slightly longer pause at that comma).
    tts_split_first_clause: bool = True
    # Requests admitted at once (synthesising + waiting); beyond that: 503 + Retry-After.
    tts_max_queue: int = 16
    # Parallel syntheses (each engine call is single-threaded enough to share 2 cores).
    tts_workers: int = 2


@lru_cache
def get_settings() -> TTSSettings:
    return TTSSettings()
