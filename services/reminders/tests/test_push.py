"""FCM push through the real sender (FCM HTTP v1 over google-auth credentials) against a
local endpoint speaking the same wire format; devices from the real auth service; invalid
tokens (UNREGISTERED) are removed from the user's devices."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from eindr_common.testing import auth_headers, new_uid

from .conftest import headers_for, wait_for
from .fcm_fake import FakeFcm


@pytest.fixture(scope="module")
def fcm(tmp_path_factory):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    fake = FakeFcm(public, "eindr-test")
    creds = tmp_path_factory.mktemp("fcm") / "service-account.json"
    creds.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "eindr-test",
                "private_key_id": "k1",
                "private_key": pem,
                "client_email": "push@eindr-test.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": fake.url + "/token",
            }
        )
    )
    yield fake, creds
    fake.close()


@pytest.fixture(scope="module")
def users_for_push(start_service):
    return start_service("users-for-push", "eindr_users.app:create_app", env={"PYTHONUNBUFFERED": "1"})


@pytest.fixture(scope="module")
def auth_for_push(start_service, users_for_push):
    return start_service(
        "auth-for-push",
        "eindr_auth.app:create_app",
        env={"EINDR_USERS_URL": users_for_push.url, "PYTHONUNBUFFERED": "1"},
    )


def test_push_goes_to_every_device_and_unregistered_tokens_are_removed(
    api, fcm, users_for_push, auth_for_push, start_worker_module
):
    fake, creds = fcm
    w = start_worker_module(
        {
            "EINDR_USERS_URL": users_for_push.url,
            "EINDR_AUTH_URL": auth_for_push.url,
            "EINDR_FCM_CREDENTIALS_FILE": str(creds),
            "EINDR_FCM_BASE_URL": fake.url,
        }
    )
    uid = new_uid()
    ah = auth_headers(uid, "auth", claims={"email": f"{uid}@example.com"})
    for token in ("good-" + uid, "bad-" + uid):
        r = httpx.post(
            auth_for_push.url + "/v1/auth/session",
            headers=ah,
            json={"device": {"device_id": "dev-" + token, "platform": "android", "push_token": token}},
        )
        assert r.status_code == 200, r.text + auth_for_push.log_path.read_text()[-4000:]
    r = httpx.patch(
        users_for_push.url + "/v1/users/me/preferences",
        json={"notification_channels": ["push", "sse"]},
        headers=auth_headers(uid, "users"),
    )
    assert r.status_code == 200, r.text
    h = headers_for(uid)
    due = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    rid = api.post(
        "/v1/reminders", json={"title": "take the bins out", "due_at": due, "priority": "urgent"}, headers=h
    ).json()["id"]
    item = wait_for(
        lambda: (
            (items := api.get("/v1/notifications", headers=h).json()["items"])
            and items[0]["channels"].get("push") == "sent"
            and items[0]
        ),
        60,
        message="push sent",
        log=w.log_path,
    )
    assert item["channels"] == {"sse": "published", "push": "sent"} and item["reminder_id"] == rid
    sent = [m for m in fake.messages if m["token"].endswith(uid)]
    assert sorted(m["token"] for m in sent) == sorted(["good-" + uid, "bad-" + uid])
    good = next(m for m in sent if m["token"].startswith("good-"))
    assert good["notification"]["title"] == "take the bins out"
    assert good["data"]["reminder_id"] == rid and good["android"]["priority"] == "high"
    assert fake.token_requests >= 1
    devices = wait_for(
        lambda: len(d := httpx.get(auth_for_push.url + "/v1/auth/devices", headers=ah).json()["items"]) == 1 and d,
        30,
        message="bad device removed",
    )
    assert devices[0]["push_token"] == "good-" + uid
