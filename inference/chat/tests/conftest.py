"""Chat tests: a tiny Bloom is built from BloomConfig at test time, saved, and served by the
real server process through the same loading code as bloom-560m."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from eindr_chat.checkpoints import build_bloom_checkpoint
from eindr_common.testing import ServiceProcess

APP = "eindr_chat.app:create_app"


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    return build_bloom_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny-bloom")


def _start(tmp: Path, name: str, env: dict[str, str]) -> ServiceProcess:
    svc = ServiceProcess(
        name=name,
        app=APP,
        env={"EINDR_LOG_LEVEL": "WARNING", **env},
        log_path=tmp / f"{name}.log",
    )
    return svc.start(timeout_s=600)


@pytest.fixture(scope="session")
def chat_server(checkpoint, tmp_path_factory) -> Iterator[str]:
    svc = _start(
        tmp_path_factory.mktemp("chat"),
        "chat",
        {"EINDR_CHAT_MODEL": str(checkpoint), "EINDR_CHAT_BATCH_WINDOW_MS": "20"},
    )
    yield svc.url
    svc.stop()


@pytest.fixture(scope="session")
def single_slot_server(checkpoint, tmp_path_factory) -> Iterator[str]:
    svc = _start(
        tmp_path_factory.mktemp("chat-1"),
        "chat-1",
        {
            "EINDR_CHAT_MODEL": str(checkpoint),
            "EINDR_CHAT_MAX_CONCURRENT_REQUESTS": "1",
        },
    )
    yield svc.url
    svc.stop()


@pytest.fixture(scope="session")
def client(chat_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=chat_server, timeout=120) as c:
        yield c


@pytest.fixture(scope="session")
def reference(checkpoint):
    """The same checkpoint loaded by transformers directly, to compare against."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(checkpoint))
    model = AutoModelForCausalLM.from_pretrained(
        str(checkpoint), dtype=torch.float32
    ).eval()

    def greedy(prompt: str, n: int) -> list[int]:
        ids = tok(prompt, return_tensors="pt").input_ids
        with torch.inference_mode():
            out = model.generate(
                ids,
                max_new_tokens=n,
                min_new_tokens=n,
                do_sample=False,
                pad_token_id=tok.pad_token_id,
            )
        return out[0, ids.shape[1] :].tolist()

    return greedy
