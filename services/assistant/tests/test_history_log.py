"""Every turn lands in the real history service, as the user, with its outcome."""

from __future__ import annotations

import time

from eindr_common.testing import auth_headers


def test_turns_are_appended_to_history(start_service, assistant_with, intent_url, make_user, client):
    history = start_service("history", "eindr_history.app:create_app", env={"EINDR_INTENT_URL": intent_url})
    assistant = assistant_with(EINDR_HISTORY_URL=history.url)
    uid = make_user()
    r = client.post(assistant.url + "/v1/assistant/text", json={"text": "remind me to call mum tomorrow at 5pm"},
                    headers=auth_headers(uid, "assistant"))
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 15
    items: list = []
    while time.monotonic() < deadline and not items:
        items = client.get(history.url + "/v1/history", headers=auth_headers(uid, "history")).json()["items"]
        time.sleep(0.2)
    assert len(items) == 1
    entry = items[0]
    assert entry["transcript"] == "remind me to call mum tomorrow at 5pm"
    assert entry["intent"] == "create_reminder" and entry["outcome"] == "success"
    assert entry["actions"][0]["type"] == "reminder.create"
    assert "intent" in entry["latency_ms"]
    # Another user sees none of it.
    other = make_user()
    assert client.get(history.url + "/v1/history", headers=auth_headers(other, "history")).json()["items"] == []
