"""TTS tests run the real server (uvicorn process, real Piper voice, real espeak-ng)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import av
import httpx
import numpy as np
import pytest

from eindr_common.testing import ServiceProcess

APP = "eindr_tts.app:create_app"


def start(tmp, name: str, env: dict[str, str]) -> ServiceProcess:
    svc = ServiceProcess(name=name, app=APP, env={"EINDR_LOG_LEVEL": "WARNING", **env}, log_path=tmp / f"{name}.log")
    return svc.start(timeout_s=180)


@pytest.fixture(scope="session")
def tts_server(tmp_path_factory) -> Iterator[str]:
    svc = start(tmp_path_factory.mktemp("tts"), "tts", {})
    yield svc.url
    svc.stop()


@pytest.fixture(scope="session")
def client(tts_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=tts_server, timeout=120) as c:
        yield c


def decode(data: bytes) -> tuple[np.ndarray, int, str]:
    """Decode any audio with PyAV: (mono float samples, sample rate, codec name)."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        codec = stream.codec_context.name
        rate = stream.codec_context.sample_rate
        frames = [f.to_ndarray().astype(np.float32).reshape(-1) for f in container.decode(stream)]
    samples = np.concatenate(frames) if frames else np.zeros(0, dtype=np.float32)
    return samples, rate, codec


def duration(data: bytes) -> float:
    samples, rate, _ = decode(data)
    return len(samples) / rate
