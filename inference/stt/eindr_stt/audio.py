"""Audio decoding with PyAV: whatever a phone records (wav, mp3, ogg/opus, m4a/aac,
webm/opus, flac) to 16 kHz mono float32, the only input Whisper takes."""

from __future__ import annotations

import io

import av
import numpy as np
from eindr_common.errors import BadRequest, PayloadTooLarge

SAMPLE_RATE = 16_000


def decode_audio(data: bytes, *, max_seconds: float) -> np.ndarray:
    """Decode ``data`` to 16 kHz mono float32 in [-1, 1].

    Raises 400 ``invalid_audio`` for anything that is not decodable audio, 400
    ``empty_audio`` for a stream without samples, 413 ``audio_too_long`` past
    ``max_seconds`` (decoding stops as soon as the limit is crossed)."""
    if not data:
        raise BadRequest("The uploaded file is empty.", code="empty_audio")
    max_samples = int(max_seconds * SAMPLE_RATE)
    chunks: list[np.ndarray] = []
    total = 0
    try:
        with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise BadRequest(
                    "The uploaded file has no audio stream.", code="invalid_audio"
                )
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    arr = out.to_ndarray().reshape(-1)
                    chunks.append(arr)
                    total += arr.shape[0]
                if total > max_samples:
                    raise PayloadTooLarge(
                        f"Audio is longer than the {max_seconds:g} s limit.",
                        code="audio_too_long",
                    )
            for out in resampler.resample(None):
                arr = out.to_ndarray().reshape(-1)
                chunks.append(arr)
                total += arr.shape[0]
    except (av.error.FFmpegError, ValueError, IndexError, UnicodeDecodeError) as exc:
        raise BadRequest(
            "The uploaded file is not audio that can be decoded (expected wav, mp3, ogg/opus, m4a, webm, flac).",
            code="invalid_audio",
        ) from exc
    if total > max_samples:
        raise PayloadTooLarge(
            f"Audio is longer than the {max_seconds:g} s limit.", code="audio_too_long"
        )
    if total == 0:
        raise BadRequest("The uploaded audio contains no samples.", code="empty_audio")
    audio = np.concatenate(chunks).astype(np.float32) / 32768.0
    return audio
