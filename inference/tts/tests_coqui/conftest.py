"""Coqui engine tests: run in the Coqui environment (torch 2.9.1 + torchaudio + coqui-tts),
not in the shared one. A VITS model is built from ``VitsConfig`` with random weights and
saved as a checkpoint directory; the server loads it through the production path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from eindr_common.testing import ServiceProcess


def build_vits_checkpoint(path: Path) -> Path:
    import torch
    from TTS.tts.configs.shared_configs import CharactersConfig
    from TTS.tts.configs.vits_config import VitsConfig
    from TTS.tts.models.vits import Vits

    config = VitsConfig(
        text_cleaner="english_cleaners",
        use_phonemes=False,
        characters=CharactersConfig(
            characters_class="TTS.tts.models.vits.VitsCharacters",
            pad="<PAD>",
            eos="<EOS>",
            bos="<BOS>",
            blank="<BLNK>",
            characters="abcdefghijklmnopqrstuvwxyz",
            punctuations="!'(),-.:;? ",
            phonemes=None,
        ),
    )
    config.audio.sample_rate = 22050
    # small, so that random-weight synthesis stays quick on two cores
    args = config.model_args
    args.hidden_channels = 32
    args.hidden_channels_ffn_text_encoder = 64
    args.num_layers_text_encoder = 2
    args.upsample_initial_channel_decoder = 64
    torch.manual_seed(0)
    model = Vits.init_from_config(config)
    path.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict()}, path / "model.pth")
    config.save_json(str(path / "config.json"))
    return path


@pytest.fixture(scope="session")
def vits_dir(tmp_path_factory) -> Path:
    return build_vits_checkpoint(tmp_path_factory.mktemp("coqui") / "tiny-vits")


@pytest.fixture(scope="session")
def coqui_server(vits_dir, tmp_path_factory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("coqui-server")
    svc = ServiceProcess(
        name="tts-coqui",
        app="eindr_tts.app:create_app",
        env={
            "EINDR_TTS_COQUI_MODEL": str(vits_dir),
            "EINDR_TTS_COQUI_LANGUAGE": "en",
            "EINDR_LOG_LEVEL": "WARNING",
        },
        log_path=tmp / "tts-coqui.log",
    )
    svc.start(timeout_s=600)
    yield svc.url
    svc.stop()


@pytest.fixture(scope="session")
def client(coqui_server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=coqui_server, timeout=300) as c:
        yield c
