"""The Coqui engine through the real server: a saved VITS checkpoint loaded by coqui-tts.

Not named test_*.py on purpose: it runs in the Coqui environment only, by path:
    .venv-coqui/bin/python -m pytest inference/tts/tests_coqui/coqui_suite.py
"""

from __future__ import annotations

import io

import av
import numpy as np


def decode(data: bytes) -> tuple[np.ndarray, int]:
    with av.open(io.BytesIO(data)) as c:
        s = c.streams.audio[0]
        frames = [f.to_ndarray().reshape(-1) for f in c.decode(s)]
        return np.concatenate(frames), s.codec_context.sample_rate


def test_coqui_voice_is_listed(client, vits_dir):
    voices = client.get("/v1/voices").json()["voices"]
    coqui = [v for v in voices if v["engine"] == "coqui"]
    assert coqui == [
        {
            "id": f"coqui-{vits_dir.name}",
            "name": vits_dir.name,
            "engine": "coqui",
            "language": "en",
            "sample_rate": 22050,
        }
    ]


def test_coqui_synthesises_each_sentence(client, vits_dir):
    resp = client.post(
        "/v1/audio/speech",
        json={
            "model": "coqui",
            "input": "Okay. I will remind you at five.",
            "response_format": "wav",
        },
    )
    assert resp.status_code == 200, resp.text
    assert (
        resp.headers["x-engine"] == "coqui"
        and resp.headers["x-voice"] == f"coqui-{vits_dir.name}"
    )
    samples, rate = decode(resp.content)
    assert (
        rate == 22050 and len(samples) > rate * 0.2
    )  # random weights: a sound, of some length
    mp3 = client.post(
        "/v1/audio/speech",
        json={
            "voice": f"coqui-{vits_dir.name}",
            "input": "Hello there.",
            "response_format": "mp3",
        },
    )
    assert mp3.status_code == 200 and len(decode(mp3.content)[0]) > 0


def test_engine_loads_the_checkpoint_directory(vits_dir, tmp_path):
    import pytest
    from eindr_tts.engines import CoquiEngine, EngineError

    engine = CoquiEngine(vits_dir, "en", "cpu")
    voice = engine.voices()[0]
    out = engine.synthesize("Hello.", voice, 1.0)
    assert out.dtype == np.int16 and out.size > 0
    with pytest.raises(EngineError, match="holds no Coqui model"):
        CoquiEngine(tmp_path, "en", "cpu")
