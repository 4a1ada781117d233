"""``reminder.fired`` goes through the transactional outbox: the event row commits in the
fire transaction, with the delivery, and a relay publishes it to eindr:events:reminders.
Each module runs only the workers it starts; each test stops its own, so no other relay
runs while the next one looks at the outbox."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import redis
from eindr_common.localstack import free_port
from eindr_common.testing import new_uid

from .conftest import headers_for, wait_for


def _create_due_soon(api, uid: str, n: int, in_s: float) -> set[str]:
    base = datetime.now(UTC) + timedelta(seconds=in_s)
    items = [{"title": f"outbox {i}", "due_at": (base + timedelta(milliseconds=10 * i)).isoformat()} for i in range(n)]
    r = api.post("/v1/reminders:bulk", json={"items": items}, headers=headers_for(uid))
    assert r.status_code == 201, r.text
    return {i["id"] for i in r.json()["items"]}


def _deliveries(db, uids: list[str]) -> list[tuple]:
    return db.execute(
        "SELECT id, uid, reminder_id, occurrence_at, offset_s, seq, worker FROM reminders.deliveries "
        "WHERE uid = ANY(%s)",
        (uids,),
    ).fetchall()


def _unrelayed(db, uids: list[str]) -> int:
    return db.execute(
        "SELECT count(*) FROM reminders.outbox WHERE event_type = 'reminder.fired' AND payload ->> 'uid' = ANY(%s)",
        (uids,),
    ).fetchone()[0]


def _fired_events(redis_url: str, uids: list[str]) -> list[dict]:
    with redis.Redis.from_url(redis_url, decode_responses=True) as rds:
        events = [
            json.loads(f["payload"]) for _, f in rds.xrange("eindr:events:reminders") if f["type"] == "reminder.fired"
        ]
    return [e for e in events if e["uid"] in uids]


def _assert_one_event_per_delivery(events: list[dict], rows: list[tuple]) -> None:
    per_delivery = Counter(e["delivery_id"] for e in events)
    assert set(per_delivery) == {str(r[0]) for r in rows}
    assert all(n == 1 for n in per_delivery.values()), per_delivery.most_common(3)
    by_id = {e["delivery_id"]: e for e in events}
    for delivery_id, uid, reminder_id, occurrence_at, offset_s, seq, _ in rows:
        event = by_id[str(delivery_id)]
        assert datetime.fromisoformat(event.pop("occurrence_at")) == occurrence_at
        assert event == {
            "uid": uid,
            "reminder_id": str(reminder_id),
            "offset_s": offset_s,
            "delivery_id": str(delivery_id),
            "seq": seq,
        }


def test_reminder_fired_is_published_exactly_once_with_two_workers(api, start_worker_module, db, redis_url):
    # Small claims, so that both workers fire (and relay) a share.
    env = {"EINDR_REMINDERS_CLAIM_BATCH": "50", "EINDR_REMINDERS_WINDOW_S": "2"}
    workers = [start_worker_module(env, worker_id=f"outbox-{k}-" + uuid.uuid4().hex[:4]) for k in "ab"]
    try:
        users = [new_uid() for _ in range(3)]
        for uid in users:
            _create_due_soon(api, uid, 100, in_s=3)
        wait_for(lambda: len(_deliveries(db, users)) >= 300, 90, message="300 deliveries", log=workers[0].log_path)
        wait_for(lambda: _unrelayed(db, users) == 0, 60, message="outbox relayed", log=workers[0].log_path)
        rows = _deliveries(db, users)
        assert len(rows) == 300
        _assert_one_event_per_delivery(_fired_events(redis_url, users), rows)
    finally:
        for w in workers:
            w.stop()


def test_an_event_committed_but_not_published_when_the_worker_is_killed_is_published_after_restart(
    api, start_worker_module, db, redis_url
):
    # A worker whose Redis is unreachable still fires (the database is the source of truth);
    # its events stay in the outbox, committed with the deliveries.
    no_redis = start_worker_module(
        {"EINDR_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}, worker_id="no-redis-" + uuid.uuid4().hex[:4]
    )
    uid = new_uid()
    ids = _create_due_soon(api, uid, 20, in_s=2)
    wait_for(lambda: len(_deliveries(db, [uid])) >= 20, 60, message="20 deliveries", log=no_redis.log_path)
    rows = _deliveries(db, [uid])
    assert {str(r[2]) for r in rows} == ids and {r[6] for r in rows} == {no_redis.env["EINDR_REMINDERS_WORKER_ID"]}
    assert _unrelayed(db, [uid]) == 20
    assert _fired_events(redis_url, [uid]) == []

    no_redis.kill()  # SIGKILL: committed, never published
    assert _unrelayed(db, [uid]) == 20

    restarted = start_worker_module()
    try:
        wait_for(lambda: _unrelayed(db, [uid]) == 0, 60, message="outbox relayed after the restart")
        _assert_one_event_per_delivery(_fired_events(redis_url, [uid]), rows)
        assert len(_deliveries(db, [uid])) == 20  # the restart re-delivered nothing
    finally:
        restarted.stop()
