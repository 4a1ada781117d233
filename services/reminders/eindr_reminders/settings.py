"""Settings of the reminders service and its worker (``EINDR_*`` environment variables)."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class RemindersSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EINDR_", extra="ignore")

    users_url: str = "http://127.0.0.1:8102"
    auth_url: str = "http://127.0.0.1:8101"
    # Who may see, edit or create reminders of whom (friends service; INTEGRATION.md).
    friends_url: str = "http://127.0.0.1:8106"
    reminders_shared_max: int = 1000  # most shared-with-me grants read per request
    # Scheduler
    reminders_window_s: float = 30.0  # look-ahead: claim what fires within this many seconds
    reminders_lease_s: float = 60.0  # a claim not renewed for this long is taken over by another worker
    reminders_poll_s: float = 1.0  # how often a worker claims/renews
    reminders_claim_batch: int = 5000  # rows per claim query
    reminders_misfire_grace_s: float = 300.0  # later recurrences missed by more than this are coalesced
    reminders_worker_metrics_port: int = 9103
    reminders_worker_id: str | None = None
    reminders_prefs_cache_s: float = 60.0
    reminders_fire_concurrency: int = 16  # fires in flight per worker (each holds one DB connection)
    reminders_db_pool_size: int = 20
    # Notification delivery
    reminders_sse_poll_s: float = 15.0  # the SSE stream re-reads the table this often even without a wake-up
    reminders_sse_ping_s: float = 15.0
    fcm_credentials_file: str | None = None  # service-account JSON; FCM push is off without it
    fcm_project_id: str | None = None  # defaults to the service account's project_id
    fcm_base_url: str = "https://fcm.googleapis.com"  # tests point this at a local FCM HTTP v1 endpoint
    fcm_timeout_s: float = 5.0
    # Where the Alembic scripts are (they are not part of the wheel); the source tree by default.
    reminders_migrations_dir: str | None = None
    # Bulk jobs
    reminders_job_chunk: int = 500


@lru_cache
def reminders_settings() -> RemindersSettings:
    return RemindersSettings()
