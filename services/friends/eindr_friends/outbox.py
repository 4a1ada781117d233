"""Relays events from ``friends.outbox`` to the friends Redis stream (eindr_common's relay)."""

from __future__ import annotations

from eindr_common.outbox import OutboxRelay

from . import repository

_relay = OutboxRelay("friends", repository.claim_outbox, repository.delete_outbox)
flush = _relay.flush
flush_quietly = _relay.flush_quietly
relay_forever = _relay.relay_forever
