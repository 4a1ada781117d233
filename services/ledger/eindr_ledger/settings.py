"""Settings of the ledger service (``EINDR_*``; the shared ones come from CommonSettings)."""

from __future__ import annotations

import socket
from pathlib import Path

from eindr_common.settings import CommonSettings

_SOURCE_MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


class LedgerSettings(CommonSettings):
    # The friends service: which friends let the caller see their shared ledger entries.
    friends_url: str = "http://127.0.0.1:8106"
    # The reminders service: a due date on an entry creates a reminder there.
    reminders_url: str = "http://127.0.0.1:8103"
    # Timeout (s) for the reminder call made while creating an entry; the entry is saved
    # either way and reminder_error says why no reminder was made.
    ledger_reminder_timeout_s: float = 3.0
    # Name of this replica in the "ledger" consumer group of the users stream.
    ledger_consumer_name: str = socket.gethostname()
    ledger_migrations_dir: Path | None = None

    @property
    def migrations_path(self) -> Path:
        return self.ledger_migrations_dir or _SOURCE_MIGRATIONS
