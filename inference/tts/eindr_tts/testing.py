"""Test helpers: start a TTS server process, decode what it returns with PyAV."""

from __future__ import annotations

import io

import av
import numpy as np
from eindr_common.testing import ServiceProcess

APP = "eindr_tts.app:create_app"


def start(tmp, name: str, env: dict[str, str]) -> ServiceProcess:
    svc = ServiceProcess(
        name=name,
        app=APP,
        env={"EINDR_LOG_LEVEL": "WARNING", **env},
        log_path=tmp / f"{name}.log",
    )
    return svc.start(timeout_s=600)


def decode(data: bytes) -> tuple[np.ndarray, int, str]:
    """Decode any audio with PyAV: (mono float samples, sample rate, codec name)."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        codec = stream.codec_context.name
        rate = stream.codec_context.sample_rate
        frames = [
            f.to_ndarray().astype(np.float32).reshape(-1)
            for f in container.decode(stream)
        ]
    samples = np.concatenate(frames) if frames else np.zeros(0, dtype=np.float32)
    return samples, rate, codec


def duration(data: bytes) -> float:
    samples, rate, _ = decode(data)
    return len(samples) / rate
