"""Snooze right after a reminder fired, as a user answers a notification: a real reminders
worker fires the reminder, then "snooze that" moves the reminder that fired last."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

from eindr_common.localstack import free_port, python_env, wait_http
from eindr_common.testing import auth_headers, eventually


def test_snooze_moves_the_reminder_that_just_fired(
    make_user, say, reminders_of, reminders_svc, users_svc, service_env, client, eindr_tmp
):
    uid = make_user(timezone="Europe/Amsterdam")
    headers = auth_headers(uid, "reminders")
    later = client.post(reminders_svc.url + "/v1/reminders", headers=headers,
                        json={"title": "Water the plants", "due_at": (datetime.now(UTC) + timedelta(hours=3)).isoformat()})
    assert later.status_code == 201, later.text
    soon = client.post(reminders_svc.url + "/v1/reminders", headers=headers,
                       json={"title": "Take the bread out", "due_at": (datetime.now(UTC) + timedelta(seconds=3)).isoformat()})
    assert soon.status_code == 201, soon.text
    fired_id = soon.json()["id"]

    metrics_port = free_port()
    env = {**service_env, "EINDR_USERS_URL": users_svc.url, "EINDR_AUTH_URL": "http://127.0.0.1:9",
           "EINDR_REMINDERS_WORKER_METRICS_PORT": str(metrics_port), "EINDR_REMINDERS_POLL_S": "0.2"}
    log = open(eindr_tmp / "assistant-reminders-worker.log", "ab")  # noqa: SIM115 (the child writes to it)
    worker = subprocess.Popen([sys.executable, "-m", "eindr_reminders.worker"], env=python_env(env),
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{metrics_port}/metrics", 60, worker)
        fired = eventually(lambda: [x for x in reminders_of(uid, status="fired") if x["id"] == fired_id], 60)
        assert fired, (eindr_tmp / "assistant-reminders-worker.log").read_text()[-3000:]
    finally:
        worker.terminate()
        worker.wait(15)
        log.close()

    asked_at = datetime.now(UTC)
    r = say(uid, "snooze that for 15 minutes")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["intent"]["name"] == "snooze_reminder", body
    [action] = body["actions"]
    assert action["type"] == "reminder.snooze" and action["status"] == "done"
    assert action["id"] == fired_id and action["data"] == {"minutes": 15}  # the one that fired, not the next due
    [snoozed] = [x for x in reminders_of(uid) if x["id"] == fired_id]  # scheduled again
    next_fire = datetime.fromisoformat(snoozed["next_fire_at"])
    assert asked_at + timedelta(minutes=15) - timedelta(seconds=1) <= next_fire <= datetime.now(UTC) + timedelta(minutes=15)
    assert "Take the bread out" in body["reply"]["text"]
    [untouched] = [x for x in reminders_of(uid) if x["title"] == "Water the plants"]
    assert untouched["next_fire_at"] == later.json()["next_fire_at"]
