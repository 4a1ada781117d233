"""Settings of the users service (``EINDR_*``; the shared ones come from CommonSettings)."""

from __future__ import annotations

from pathlib import Path

from eindr_common.settings import CommonSettings

_SOURCE_MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


class UsersSettings(CommonSettings):
    # Where the Alembic scripts are; defaults to services/users/migrations next to the
    # package (the Docker image sets it to the copied folder).
    users_migrations_dir: Path | None = None

    @property
    def migrations_path(self) -> Path:
        return self.users_migrations_dir or _SOURCE_MIGRATIONS
