"""Settings of the friends service (``EINDR_*``; the shared ones come from CommonSettings)."""

from __future__ import annotations

import socket
from pathlib import Path

from eindr_common.settings import CommonSettings
from pydantic import model_validator

_SOURCE_MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
DEV_PEPPER = "dev-friends-pepper-change-me-0123456789abcdef"


class FriendsSettings(CommonSettings):
    # Secret key of HMAC-SHA256(pepper, sha256(identifier)) for verified phones/emails.
    # Never in the repo; changing it makes every stored identifier unmatchable until
    # users re-register (PUT /v1/friends/me/discovery) — rotate deliberately.
    friends_hash_pepper: str = DEV_PEPPER
    # Contact matching: most hashes in one request, and per user per UTC day.
    friends_match_max_batch: int = 5000
    friends_match_daily_limit: int = 10000
    # Shareable invite codes: default and longest lifetime.
    friends_invite_code_ttl_s: int = 7 * 24 * 3600
    friends_invite_code_max_ttl_s: int = 30 * 24 * 3600
    # Invites to a user id or contact expire after this long unanswered.
    friends_invite_ttl_s: int = 30 * 24 * 3600
    # Where a shareable invite link points (the code is appended).
    friends_invite_link_base: str = "https://eindr.app/invite/"
    # Lifetime of the cached permission answers (they are invalidated on change anyway).
    friends_cache_ttl_s: int = 300
    friends_consumer_name: str = socket.gethostname()
    friends_migrations_dir: Path | None = None

    @model_validator(mode="after")
    def _refuse_dev_pepper(self) -> FriendsSettings:
        if self.env != "development" and self.friends_hash_pepper == DEV_PEPPER:
            raise ValueError(f"EINDR_FRIENDS_HASH_PEPPER still has its development default; set a real one when EINDR_ENV={self.env}")
        if len(self.friends_hash_pepper) < 32:
            raise ValueError("EINDR_FRIENDS_HASH_PEPPER must be at least 32 characters")
        return self

    @property
    def migrations_path(self) -> Path:
        return self.friends_migrations_dir or _SOURCE_MIGRATIONS
