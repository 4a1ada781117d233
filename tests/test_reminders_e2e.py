"""Reminders through the real gateway: create a reminder due in a few seconds and watch it
arrive on the SSE stream (the README's curl session), with users, auth, the reminders API
and its scheduler worker as real processes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from eindr_common.localstack import free_port, python_env, wait_http
from eindr_common.testing import new_uid
from eindr_gateway.devtoken import emulator_token

PROJECT = "eindr-e2e"


@pytest.fixture(scope="module")
def reminders_stack(start_service, service_env, eindr_tmp, e2e_users, e2e_auth):
    api = start_service(
        "e2e-reminders",
        "eindr_reminders.app:create_app",
        env={"EINDR_USERS_URL": e2e_users.url, "EINDR_AUTH_URL": e2e_auth.url},
    )
    port = free_port()
    worker = subprocess.Popen(
        [sys.executable, "-m", "eindr_reminders.worker"],
        env=python_env(
            {
                **service_env,
                "EINDR_USERS_URL": e2e_users.url,
                "EINDR_AUTH_URL": e2e_auth.url,
                "EINDR_REMINDERS_WORKER_METRICS_PORT": str(port),
                "EINDR_REMINDERS_POLL_S": "0.3",
            }
        ),
        stdout=open(eindr_tmp / "e2e-reminders-worker.log", "ab"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )
    wait_http(f"http://127.0.0.1:{port}/metrics", 60, worker)
    gateway = start_service(
        "e2e-gateway-reminders",
        "eindr_gateway.app:create_app",
        env={
            "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099",
            "EINDR_FIREBASE_PROJECT_ID": PROJECT,
            "EINDR_GATEWAY_SERVICE_URLS": json.dumps(
                {"users": e2e_users.url, "auth": e2e_auth.url, "reminders": api.url}
            ),
        },
    )
    yield gateway
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(15)
    except subprocess.TimeoutExpired:
        worker.kill()


def client_for(gateway, uid: str) -> httpx.Client:
    return httpx.Client(
        base_url=gateway.url,
        headers={"authorization": "Bearer " + emulator_token(uid, PROJECT)},
        timeout=30,
    )


def test_reminder_due_soon_arrives_on_the_sse_stream_through_the_gateway(
    reminders_stack,
):
    uid = new_uid()
    with client_for(reminders_stack, uid) as c:
        assert (
            c.post(
                "/v1/auth/session",
                json={"device": {"device_id": "phone", "platform": "ios"}},
            ).status_code
            == 200
        )
        assert (
            c.patch(
                "/v1/users/me/preferences", json={"timezone": "Europe/Amsterdam"}
            ).status_code
            == 200
        )
        events: list[dict] = []
        connected = threading.Event()

        def read() -> None:
            with httpx.Client(timeout=httpx.Timeout(5, read=None)) as s:  # noqa: SIM117
                with s.stream(
                    "GET",
                    reminders_stack.url + "/v1/notifications/stream",
                    headers={"authorization": "Bearer " + emulator_token(uid, PROJECT)},
                    params={"after": 0},
                ) as r:
                    assert r.status_code == 200 and r.headers[
                        "content-type"
                    ].startswith("text/event-stream")
                    connected.set()
                    for line in r.iter_lines():
                        if line.startswith("data:"):
                            events.append(json.loads(line[5:]))
                            return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        assert connected.wait(30)
        due = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
        r = c.post(
            "/v1/reminders",
            json={
                "title": "call mum",
                "due_at": due,
                "phrase": "remind me to call mum in 3 seconds",
            },
        )
        assert r.status_code == 201, r.text
        rid = r.json()["id"]
        reader.join(60)
        assert (
            events
            and events[0]["reminder_id"] == rid
            and events[0]["title"] == "call mum"
        )
        listed = c.get("/v1/notifications").json()["items"]
        assert [i["reminder_id"] for i in listed] == [rid]
        # Floating reminders take the user's zone from the users service.
        floating = c.post(
            "/v1/reminders", json={"title": "gym", "local_due": "2031-01-02T07:30:00"}
        ).json()
        assert floating["timezone"] == "Europe/Amsterdam" and floating[
            "due_at"
        ].startswith("2031-01-02T06:30:00")
        # Another user sees none of it.
        with client_for(reminders_stack, new_uid()) as other:
            assert other.get(f"/v1/reminders/{rid}").status_code == 404
        # Bulk create is a premium feature at the gateway.
        r = c.post(
            "/v1/reminders:bulk", json={"items": [{"title": "x", "due_at": due}]}
        )
        assert r.status_code == 403 and r.json()["code"] == "feature_locked"
