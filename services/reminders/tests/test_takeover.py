"""Two worker processes fire 2,000 reminders; one is SIGKILLed mid-run: every reminder is
delivered exactly once (delivery rows and SSE events counted), and none of its
``reminder.fired`` events is lost. This module runs no other worker, so the two under test
are the only ones claiming."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import redis
from eindr_common.outbox import BATCH
from eindr_common.testing import new_uid

from .conftest import headers_for, wait_for
from .sse import SseReader


def test_two_workers_2000_reminders_one_sigkilled_every_reminder_exactly_once(
    api, reminders_api, start_worker_module, db, redis_url
):
    env = {
        "EINDR_REMINDERS_WINDOW_S": "3",
        "EINDR_REMINDERS_LEASE_S": "4",
        "EINDR_REMINDERS_CLAIM_BATCH": "100",
        "EINDR_REMINDERS_POLL_S": "0.2",
    }
    a = start_worker_module(env, worker_id="worker-a-" + uuid.uuid4().hex[:4])
    b = start_worker_module(env, worker_id="worker-b-" + uuid.uuid4().hex[:4])
    users = [new_uid() for _ in range(4)]
    readers = {
        u: SseReader(reminders_api.url + "/v1/notifications/stream", headers_for(u), {"after": 0}).start()
        for u in users
    }
    base = datetime.now(UTC) + timedelta(seconds=8)
    ids: set[str] = set()
    for k, uid in enumerate(users):
        items = [
            {"title": f"u{k} r{i}", "due_at": (base + timedelta(milliseconds=20 * (i * 4 + k))).isoformat()}
            for i in range(500)
        ]
        r = api.post("/v1/reminders:bulk", json={"items": items}, headers=headers_for(uid))
        assert r.status_code == 201, r.text
        ids |= {i["id"] for i in r.json()["items"]}
    assert len(ids) == 2000

    def delivered() -> int:
        return db.execute("SELECT count(*) FROM reminders.deliveries WHERE uid = ANY(%s)", (users,)).fetchone()[0]

    wait_for(lambda: delivered() >= 500, 60, interval_s=0.05, message="a quarter delivered")
    held_by_a = db.execute(
        "SELECT count(*) FROM reminders.reminders WHERE uid = ANY(%s) AND lease_owner = %s AND status = 'scheduled'",
        (users, a.env["EINDR_REMINDERS_WORKER_ID"]),
    ).fetchone()[0]
    a.kill()  # SIGKILL mid-run: no cleanup, its leases must expire
    killed_at = datetime.now(UTC)
    wait_for(lambda: delivered() >= 2000, 120, message="all delivered")
    wait_for(lambda: sum(len(r.events) for r in readers.values()) >= 2000, 180, message="all SSE events")
    time.sleep(2)  # anything extra would show up now
    for r in readers.values():
        r.close()

    rows = db.execute(
        "SELECT reminder_id, count(*) FROM reminders.deliveries WHERE uid = ANY(%s) GROUP BY reminder_id", (users,)
    ).fetchall()
    assert len(rows) == 2000 and all(n == 1 for _, n in rows)
    assert {str(r[0]) for r in rows} == ids
    assert (
        db.execute(
            "SELECT count(*) FROM reminders.reminders WHERE uid = ANY(%s) AND status <> 'fired'", (users,)
        ).fetchone()[0]
        == 0
    )
    for uid, reader in readers.items():
        seqs = [int(e["id"]) for e in reader.events]
        assert seqs == list(range(1, 501)), uid  # every delivery once, in order, no gaps
        assert len({e["data"]["reminder_id"] for e in reader.events}) == 500
    workers = dict(
        db.execute(
            "SELECT worker, count(*) FROM reminders.deliveries WHERE uid = ANY(%s) GROUP BY worker", (users,)
        ).fetchall()
    )
    b_after_kill = db.execute(
        "SELECT count(*) FROM reminders.deliveries WHERE uid = ANY(%s) AND worker = %s AND delivered_at > %s",
        (users, b.env["EINDR_REMINDERS_WORKER_ID"], killed_at),
    ).fetchone()[0]
    assert workers.get(a.env["EINDR_REMINDERS_WORKER_ID"], 0) > 0 and b_after_kill > 0

    # reminder.fired went through the outbox: none lost to the SIGKILL. Publishing is at
    # least once: only the relay batch A was publishing when killed (at most outbox.BATCH
    # events) can reach the stream twice.
    wait_for(
        lambda: (
            db.execute("SELECT count(*) FROM reminders.outbox WHERE payload ->> 'uid' = ANY(%s)", (users,)).fetchone()[
                0
            ]
            == 0
        ),
        60,
        message="outbox relayed",
    )
    with redis.Redis.from_url(redis_url, decode_responses=True) as rds:
        fired = [
            json.loads(f["payload"]) for _, f in rds.xrange("eindr:events:reminders") if f["type"] == "reminder.fired"
        ]
    per_delivery = Counter(e["delivery_id"] for e in fired if e["uid"] in users)
    delivery_ids = {str(r[0]) for r in db.execute("SELECT id FROM reminders.deliveries WHERE uid = ANY(%s)", (users,))}
    assert set(per_delivery) == delivery_ids
    republished = sum(n - 1 for n in per_delivery.values())
    assert republished <= BATCH
    print(f"reminder.fired events published twice after the SIGKILL: {republished}")
    print(f"\nworker A held {held_by_a} leases when killed; deliveries per worker: {workers}")
