"""Settings of the intent server, read from ``EINDR_INTENT_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache

from eindr_common.settings import CommonSettings


class IntentSettings(CommonSettings):
    # A sentence-transformers model directory; unset: the packaged all-MiniLM-L6-v2.
    intent_model: str | None = None
    intent_model_name: str = "sentence-transformers/all-MiniLM-L6-v2"
    intent_device: str = "auto"  # auto | cpu | cuda
    # torch intra-op threads on CPU (0: torch's default, one per core)
    intent_cpu_threads: int = 0
    # Labelled utterances (YAML); unset: the file shipped in eindr_intent/data.
    intent_examples: str | None = None
    # Below this probability the answer is out_of_scope.
    intent_oos_threshold: float = 0.3
    # Micro-batching: a pass takes everything queued (at most max_batch texts), after waiting
    # at most this long for more when it is not full.
    intent_batch_window_ms: float = 4.0
    intent_max_batch_size: int = 64
    # Texts admitted and waiting; beyond that: 503 + Retry-After.
    intent_max_queue: int = 512
    intent_max_client_batch_size: int = 32
    intent_max_input_chars: int = 4000


@lru_cache
def get_settings() -> IntentSettings:
    return IntentSettings()
