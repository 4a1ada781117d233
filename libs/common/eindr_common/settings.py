"""Settings every component shares, read from ``EINDR_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Development defaults: usable on a laptop, refused anywhere else (see _refuse_dev_secrets).
DEV_INTERNAL_TOKEN_SECRET = "dev-internal-token-secret-change-me-0123456789"
DEV_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/eindr"
DEV_REDIS_URL = "redis://127.0.0.1:6379/0"


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EINDR_", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    database_url: str = DEV_DATABASE_URL
    redis_url: str = DEV_REDIS_URL
    internal_token_secret: str = DEV_INTERNAL_TOKEN_SECRET
    # Verify-only secrets, for rotating the signing secret without a moment where one side
    # refuses the other's tokens (docs/operations.md, "Rotating the internal token secret").
    internal_token_accepted_secrets: list[str] = []
    internal_token_ttl_s: int = 60
    log_level: str = "INFO"
    sentry_dsn: str | None = None
    # Apply this service's migrations when it starts (development convenience; production
    # runs them as a separate step before the new version serves).
    migrate_on_start: bool = False
    # Timeouts for calls between services.
    upstream_connect_timeout_s: float = 2.0
    upstream_read_timeout_s: float = 10.0

    @model_validator(mode="after")
    def _refuse_dev_secrets(self) -> CommonSettings:
        if self.env != "development" and self.internal_token_secret == DEV_INTERNAL_TOKEN_SECRET:
            raise ValueError(
                "EINDR_INTERNAL_TOKEN_SECRET still has its development default; "
                f"set a real secret when EINDR_ENV={self.env}"
            )
        if len(self.internal_token_secret) < 32:
            raise ValueError("EINDR_INTERNAL_TOKEN_SECRET must be at least 32 characters")
        if any(len(s) < 32 for s in self.internal_token_accepted_secrets):
            raise ValueError("every EINDR_INTERNAL_TOKEN_ACCEPTED_SECRETS entry must be at least 32 characters")
        if self.env != "development" and DEV_INTERNAL_TOKEN_SECRET in self.internal_token_accepted_secrets:
            raise ValueError(f"EINDR_INTERNAL_TOKEN_ACCEPTED_SECRETS holds the development default; remove it when EINDR_ENV={self.env}")
        return self

    @property
    def sentry_env(self) -> str:
        return self.env


@lru_cache
def common_settings() -> CommonSettings:
    return CommonSettings()
