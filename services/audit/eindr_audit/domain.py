"""The hash chain: each record's hash covers its content and the previous record's hash,
so editing, deleting or reordering any record breaks every hash after it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

GENESIS = "0" * 64

CHAINED_FIELDS = (
    "seq", "event_id", "at", "service", "actor_uid", "actor_roles", "source_ip", "action",
    "resource_type", "resource_id", "subject_uid", "request_id", "details",
)


def canonical(record: dict[str, Any]) -> bytes:
    body = {}
    for name in CHAINED_FIELDS:
        value = record[name]
        if isinstance(value, datetime):
            value = value.isoformat(timespec="microseconds")
        body[name] = value
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def chain_hash(prev_hash: str, record: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical(record)).hexdigest()


@dataclass
class Verdict:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str | None = None


class ChainVerifier:
    """Feed records in ``seq`` order; the first inconsistency is kept."""

    def __init__(self) -> None:
        self.prev_hash = GENESIS
        self.expected_seq = 1
        self.verdict = Verdict(ok=True, checked=0)

    def feed(self, record: dict[str, Any]) -> bool:
        if not self.verdict.ok:
            return False
        seq = record["seq"]
        reason = None
        if seq != self.expected_seq:
            reason = f"record {self.expected_seq} is missing" if seq > self.expected_seq else "records out of order"
        elif record["prev_hash"] != self.prev_hash:
            reason = "prev_hash does not match the previous record"
        elif chain_hash(self.prev_hash, record) != record["hash"]:
            reason = "record content does not match its hash"
        if reason:
            self.verdict = Verdict(ok=False, checked=self.verdict.checked, first_bad_seq=min(seq, self.expected_seq), reason=reason)
            return False
        self.prev_hash = record["hash"]
        self.expected_seq = seq + 1
        self.verdict.checked += 1
        return True

    def finish(self, head_seq: int) -> Verdict:
        if self.verdict.ok and self.expected_seq - 1 != head_seq:
            self.verdict = Verdict(ok=False, checked=self.verdict.checked, first_bad_seq=self.expected_seq,
                                   reason=f"records after {self.expected_seq - 1} are missing (head is {head_seq})")
        return self.verdict
