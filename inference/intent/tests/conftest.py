"""Intent tests run the real server (uvicorn process, real all-MiniLM-L6-v2 weights)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from eindr_common.testing import ServiceProcess

APP = "eindr_intent.app:create_app"


def _start(tmp, name: str, env: dict[str, str]) -> ServiceProcess:
    svc = ServiceProcess(
        name=name,
        app=APP,
        env={"EINDR_LOG_LEVEL": "WARNING", **env},
        log_path=tmp / f"{name}.log",
    )
    return svc.start(timeout_s=600)


@pytest.fixture(scope="session")
def intent_server(tmp_path_factory) -> Iterator[str]:
    svc = _start(tmp_path_factory.mktemp("intent"), "intent", {})
    yield svc.url
    svc.stop()


@pytest.fixture(scope="session")
def tiny_queue_server(tmp_path_factory) -> Iterator[str]:
    """At most 4 texts may wait: a request of 5 texts finds the queue full."""
    svc = _start(
        tmp_path_factory.mktemp("intent-small"),
        "intent-small",
        {"EINDR_INTENT_MAX_QUEUE": "4"},
    )
    yield svc.url
    svc.stop()


@pytest.fixture(scope="session")
def client(intent_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=intent_server, timeout=60) as c:
        yield c
