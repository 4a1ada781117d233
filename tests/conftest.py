"""Cross-service end-to-end rig: the real gateway in front of the real services, each its
own process, sharing one PostgreSQL and one Redis."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from eindr_gateway.devtoken import emulator_token

E2E_PROJECT = "eindr-e2e"


@pytest.fixture(scope="session")
def e2e_users(start_service):
    return start_service("e2e-users", "eindr_users.app:create_app")


@pytest.fixture(scope="session")
def e2e_auth(start_service, e2e_users):
    return start_service("e2e-auth", "eindr_auth.app:create_app", env={"EINDR_USERS_URL": e2e_users.url})


@pytest.fixture(scope="session")
def e2e_gateway(start_service, e2e_users, e2e_auth):
    return start_service(
        "e2e-gateway",
        "eindr_gateway.app:create_app",
        env={
            "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099",
            "EINDR_FIREBASE_PROJECT_ID": E2E_PROJECT,
            # No calendar service runs in this rig: its port is closed on purpose.
            "EINDR_GATEWAY_SERVICE_URLS": json.dumps({"users": e2e_users.url, "auth": e2e_auth.url, "calendar": "http://127.0.0.1:9"}),
        },
    )


@pytest.fixture
def client(e2e_gateway) -> Callable[..., httpx.Client]:
    """``client(uid, admin=False)``: an HTTP client to the gateway signed in as ``uid``."""
    opened: list[httpx.Client] = []

    def _client(uid: str, *, admin: bool = False) -> httpx.Client:
        c = httpx.Client(
            base_url=e2e_gateway.url,
            headers={"authorization": "Bearer " + emulator_token(uid, E2E_PROJECT, admin=admin)},
            timeout=20,
        )
        opened.append(c)
        return c

    yield _client
    for c in opened:
        c.close()
