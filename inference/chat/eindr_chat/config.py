"""Settings of the chat server, read from ``EINDR_CHAT_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from eindr_common.settings import CommonSettings


class ChatSettings(CommonSettings):
    # A Bloom checkpoint directory (config.json, weights, tokenizer): bloom-560m or
    # bloomz-560m in production. Required: there is no packaged default.
    chat_model: str | None = None
    chat_model_name: str | None = None  # reported by /info; default: the directory name
    chat_device: Literal["auto", "cpu", "cuda"] = "auto"
    chat_dtype: Literal["auto", "float32", "float16", "bfloat16"] = (
        "auto"  # auto: float16 on GPU, float32 on CPU
    )
    chat_cpu_threads: int = 0  # 0: torch's default
    # Batching: requests that arrive within the window are decoded together.
    chat_max_batch_size: int = 8
    chat_batch_window_ms: float = 5.0
    # Requests admitted at once (running + waiting); beyond that: 503 + Retry-After.
    chat_max_concurrent_requests: int = 64
    chat_max_input_chars: int = 4000
    chat_max_input_tokens: int = 1024
    chat_max_total_tokens: int = 2048
    chat_max_new_tokens: int = 512
    chat_max_stop_sequences: int = 4


@lru_cache
def get_settings() -> ChatSettings:
    return ChatSettings()
