"""Settings of the auth service (``EINDR_*``; the shared ones come from CommonSettings)."""

from __future__ import annotations

import socket
from pathlib import Path

from eindr_common.settings import CommonSettings

_SOURCE_MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


class AuthSettings(CommonSettings):
    # Base URL of the users service (provisioning on first login).
    users_url: str = "http://127.0.0.1:8102"
    # Name of this replica in the "auth" consumer group of the users stream. Keep it stable
    # across restarts so a crashed replica re-reads its own unacknowledged events.
    auth_consumer_name: str = socket.gethostname()
    # Signed-in devices kept per user; the least recently seen beyond it are dropped.
    auth_max_devices: int = 20
    auth_migrations_dir: Path | None = None

    @property
    def migrations_path(self) -> Path:
        return self.auth_migrations_dir or _SOURCE_MIGRATIONS
