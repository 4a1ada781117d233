"""Streaming encoders: int16 mono chunks in, bytes of the requested format out, chunk by
chunk, so the first sentence reaches the client before the last one is synthesised."""

from __future__ import annotations

import io
import struct

import av
import numpy as np

CONTENT_TYPES = {
    "wav": "audio/wav",
    "pcm": "audio/pcm",
    "mp3": "audio/mpeg",
    "opus": "audio/ogg; codecs=opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
}
PCM_RATE = 24_000  # OpenAI's pcm: 24 kHz, 16-bit signed little-endian, mono

_AV = {  # format -> (container, codec, output rate or None for the voice's own)
    "mp3": ("mp3", "libmp3lame", None),
    "opus": ("ogg", "libopus", 48_000),
    "aac": ("adts", "aac", None),
    "flac": ("flac", "flac", None),
}


def wav_header(sample_rate: int) -> bytes:
    """A WAV header for a stream of unknown length (sizes set to the maximum, as streaming
    servers do; decoders read until the end of the stream)."""
    size = 0xFFFFFFFF
    return (
        b"RIFF"
        + struct.pack("<I", size)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", size)
    )


class _Sink(io.RawIOBase):
    def __init__(self) -> None:
        self.buf = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:  # type: ignore[override]
        self.buf += b
        return len(b)

    def drain(self) -> bytes:
        out = bytes(self.buf)
        self.buf.clear()
        return out


class Encoder:
    def __init__(self, fmt: str, sample_rate: int) -> None:
        self.fmt = fmt
        self.rate = sample_rate
        self.started = False
        self._resampler = None
        if fmt == "pcm" and sample_rate != PCM_RATE:
            self._resampler = av.AudioResampler(
                format="s16", layout="mono", rate=PCM_RATE
            )
        if fmt in _AV:
            container, codec, rate = _AV[fmt]
            self.sink = _Sink()
            self.container = av.open(self.sink, mode="w", format=container)
            out_rate = rate or sample_rate
            if codec == "libmp3lame" and out_rate not in (
                8000,
                11025,
                12000,
                16000,
                22050,
                24000,
                32000,
                44100,
                48000,
            ):
                out_rate = 24000
            self.stream = self.container.add_stream(codec, rate=out_rate, layout="mono")
            fmt_name = self.stream.codec_context.codec.audio_formats[0].name
            self._resampler = av.AudioResampler(
                format=fmt_name, layout="mono", rate=out_rate
            )

    def _frame(self, samples: np.ndarray) -> av.AudioFrame:
        frame = av.AudioFrame.from_ndarray(
            samples.reshape(1, -1).astype(np.int16), format="s16", layout="mono"
        )
        frame.sample_rate = self.rate
        return frame

    def encode(self, samples: np.ndarray) -> bytes:
        out = b""
        if self.fmt == "wav":
            if not self.started:
                out += wav_header(self.rate)
            self.started = True
            return out + samples.astype("<i2").tobytes()
        if self.fmt == "pcm":
            if self._resampler is None:
                return samples.astype("<i2").tobytes()
            return b"".join(
                f.to_ndarray().astype("<i2").tobytes()
                for f in self._resampler.resample(self._frame(samples))
            )
        for f in self._resampler.resample(self._frame(samples)):
            for packet in self.stream.encode(f):
                self.container.mux(packet)
        return self.sink.drain()

    def finish(self) -> bytes:
        if self.fmt == "wav":
            return b"" if self.started else wav_header(self.rate)
        if self.fmt == "pcm":
            if self._resampler is None:
                return b""
            return b"".join(
                f.to_ndarray().astype("<i2").tobytes()
                for f in self._resampler.resample(None)
            )
        for f in self._resampler.resample(None):
            for packet in self.stream.encode(f):
                self.container.mux(packet)
        for packet in self.stream.encode(None):
            self.container.mux(packet)
        self.container.close()
        return self.sink.drain()
