"""Settings of the calendar service and its sync worker (``EINDR_*`` environment variables)."""

from __future__ import annotations

from pathlib import Path

from eindr_common.settings import CommonSettings
from pydantic import model_validator

_SOURCE_MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"

# Development only (refused when EINDR_ENV is not development): a fixed Fernet key.
DEV_ENCRYPTION_KEY = "ZGV2LWNhbGVuZGFyLWtleS1jaGFuZ2UtbWUtMDEyMzQ="


class CalendarSettings(CommonSettings):
    calendar_migrations_dir: Path | None = None
    reminders_url: str = "http://127.0.0.1:8103"

    # Encryption at rest: comma-separated Fernet keys, newest first. Encrypts with the first,
    # decrypts with any (MultiFernet); `python -m eindr_calendar.crypto rotate` re-encrypts.
    calendar_encryption_keys: str = DEV_ENCRYPTION_KEY

    # Google OAuth 2.0 + Calendar API v3. Base URLs are configurable so tests (and any
    # compatible endpoint) are reached through the same client code.
    calendar_google_client_id: str = ""
    calendar_google_client_secret: str = ""
    calendar_google_redirect_uri: str = "app.eindr:/oauth2/google"
    calendar_google_auth_url: str = "https://accounts.google.com/o/oauth2/v2/auth"
    calendar_google_token_url: str = "https://oauth2.googleapis.com/token"
    calendar_google_api_base: str = "https://www.googleapis.com/"
    calendar_google_scope: str = "https://www.googleapis.com/auth/calendar"
    # Public URL Google posts channel notifications to (the gateway's route to this service).
    calendar_webhook_url: str = ""
    calendar_channel_ttl_s: int = 7 * 24 * 3600
    calendar_channel_renew_before_s: int = 24 * 3600

    # Sync worker
    calendar_poll_interval_s: int = 900  # default per connection
    calendar_min_poll_interval_s: int = 60
    calendar_backoff_base_s: float = 30.0
    calendar_backoff_max_s: float = 3600.0
    calendar_sync_timeout_s: float = 300.0  # one connection's run; a slow one never blocks the others
    calendar_worker_concurrency: int = 8
    calendar_worker_tick_s: float = 1.0
    calendar_worker_metrics_port: int = 9107
    calendar_consumer_name: str | None = None
    calendar_http_timeout_s: float = 20.0
    calendar_apply_concurrency: int = 8  # changes applied to reminders at once within a run
    calendar_caldav_batch: int = 200  # hrefs per calendar-multiget REPORT
    calendar_event_minutes: int = 15  # length of an event written for a reminder
    # Calendars created on the account after connecting: a run re-reads the account's
    # calendar list when it is older than this; reading the connections through the API
    # asks for it sooner, once the list is older than the second value.
    calendar_rediscover_s: int = 3600
    calendar_rediscover_on_view_s: int = 300

    @model_validator(mode="after")
    def _refuse_dev_key(self) -> CalendarSettings:
        if self.env == "production" and DEV_ENCRYPTION_KEY in self.encryption_keys:
            raise ValueError("EINDR_CALENDAR_ENCRYPTION_KEYS still holds the development key; set real Fernet keys")
        return self

    @property
    def encryption_keys(self) -> list[str]:
        return [k.strip() for k in self.calendar_encryption_keys.split(",") if k.strip()]

    @property
    def migrations_path(self) -> Path:
        return self.calendar_migrations_dir or _SOURCE_MIGRATIONS
