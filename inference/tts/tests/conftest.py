"""TTS tests run the real server (uvicorn process, real Piper voice, real espeak-ng)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from eindr_tts.testing import start


@pytest.fixture(scope="session")
def tts_server(tmp_path_factory) -> Iterator[str]:
    svc = start(tmp_path_factory.mktemp("tts"), "tts", {})
    yield svc.url
    svc.stop()


@pytest.fixture(scope="session")
def client(tts_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=tts_server, timeout=120) as c:
        yield c
