"""Relays events from ``reminders.outbox`` to ``eindr:events:reminders`` (eindr_common's relay).

Every domain event of the service (the API's ``reminder.*`` changes, the worker's
``reminder.fired``) is written in the transaction of its change. Whoever committed it
flushes right after the commit; the worker's background relay publishes whatever a crash
or a Redis outage left behind. Publishing is at least once (a relay killed between XADD and
its commit publishes again), so consumers dedupe on the payload's ids (``delivery_id`` for
``reminder.fired``)."""

from __future__ import annotations

from eindr_common.outbox import OutboxRelay

from . import repository

_relay = OutboxRelay("reminders", repository.claim_outbox, repository.delete_outbox)
flush = _relay.flush
flush_quietly = _relay.flush_quietly
