"""STT tests run the real server (uvicorn process, real Whisper base weights) and feed it
speech synthesised at test time by espeak-ng and Piper."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from eindr_common.testing import ServiceProcess

APP = "eindr_stt.app:create_app"


def _start(tmp: Path, name: str, env: dict[str, str]) -> ServiceProcess:
    svc = ServiceProcess(
        name=name,
        app=APP,
        env={
            "EINDR_STT_CACHE_DIR": str(tmp / "model-cache"),
            "EINDR_LOG_LEVEL": "WARNING",
            **env,
        },
        log_path=tmp / f"{name}.log",
    )
    return svc.start(timeout_s=600)


@pytest.fixture(scope="session")
def stt_server(tmp_path_factory) -> Iterator[str]:
    svc = _start(tmp_path_factory.mktemp("stt"), "stt", {})
    yield svc.url
    svc.stop()


@pytest.fixture(scope="session")
def small_stt_server(tmp_path_factory) -> Iterator[str]:
    """Tight limits, to reach them with small inputs: 300 kB upload, 5 s audio, 1 request in flight."""
    svc = _start(
        tmp_path_factory.mktemp("stt-small"),
        "stt-small",
        {
            "EINDR_STT_MAX_UPLOAD_BYTES": "300000",
            "EINDR_STT_MAX_AUDIO_SECONDS": "5",
            "EINDR_STT_MAX_QUEUE": "1",
        },
    )
    yield svc.url
    svc.stop()


@pytest.fixture(scope="session")
def client(stt_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stt_server, timeout=120) as c:
        yield c
