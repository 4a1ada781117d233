"""The local-development identity path with the real Firebase Auth Emulator
(firebase-tools, offline): a user signs up with the emulator's REST API and the gateway
accepts the emulator's own ID token."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest
from eindr_common.localstack import free_port, wait_http

ROOT = Path(__file__).resolve().parent.parent
FIREBASE_CLI = ROOT / "tools" / "firebase-emulator" / "node_modules" / ".bin" / "firebase"
PROJECT = "demo-eindr"


@pytest.fixture(scope="module")
def auth_emulator(tmp_path_factory):
    assert FIREBASE_CLI.exists(), "scripts/bootstrap.sh installs firebase-tools into tools/firebase-emulator"
    workdir = tmp_path_factory.mktemp("firebase")
    port, hub, logging_port = free_port(), free_port(), free_port()
    (workdir / "firebase.json").write_text(json.dumps({
        "emulators": {"auth": {"host": "127.0.0.1", "port": port}, "hub": {"host": "127.0.0.1", "port": hub},
                      "logging": {"host": "127.0.0.1", "port": logging_port}, "ui": {"enabled": False},
                      "singleProjectMode": True}
    }))
    log = open(workdir / "emulator.log", "wb")  # noqa: SIM115 (the emulator writes to it)
    proc = subprocess.Popen(
        [str(FIREBASE_CLI), "emulators:start", "--only", "auth", "--project", PROJECT],
        cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(workdir), "FIREBASE_CLI_DISABLE_UPDATE_CHECK": "true",
             "CI": "true"},
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/", 120, proc)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_gateway_accepts_real_emulator_tokens(auth_emulator, start_service, e2e_users, e2e_auth):
    signup = httpx.post(
        f"http://{auth_emulator}/identitytoolkit.googleapis.com/v1/accounts:signUp?key=any",
        json={"email": "alice@example.com", "password": "correct-horse", "returnSecureToken": True},
    )
    assert signup.status_code == 200, signup.text
    uid, id_token = signup.json()["localId"], signup.json()["idToken"]

    gateway = start_service(
        "gateway-firebase-emulator", "eindr_gateway.app:create_app",
        env={
            "FIREBASE_AUTH_EMULATOR_HOST": auth_emulator,
            "EINDR_FIREBASE_PROJECT_ID": PROJECT,
            "EINDR_GATEWAY_SERVICE_URLS": json.dumps({"users": e2e_users.url, "auth": e2e_auth.url}),
        },
    )
    headers = {"authorization": f"Bearer {id_token}"}
    session = httpx.post(gateway.url + "/v1/auth/session", headers=headers,
                         json={"device": {"device_id": "emu-phone", "platform": "android"}}, timeout=20)
    assert session.status_code in (200, 201), session.text
    me = httpx.get(gateway.url + "/v1/users/me", headers=headers)
    assert me.status_code == 200
    assert me.json()["id"] == uid and me.json()["email"] == "alice@example.com"

    # The same emulator token is refused by a gateway that is not in emulator mode.
    strict = start_service(
        "gateway-strict", "eindr_gateway.app:create_app",
        env={"EINDR_FIREBASE_PROJECT_ID": PROJECT, "EINDR_GATEWAY_FIREBASE_CERTS_URL": "http://127.0.0.1:9/none",
             "EINDR_GATEWAY_SERVICE_URLS": json.dumps({"users": e2e_users.url})},
    )
    refused = httpx.get(strict.url + "/v1/users/me", headers=headers)
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_algorithm"
