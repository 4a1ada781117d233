"""Settings of the history service (``EINDR_*``; the shared ones come from CommonSettings)."""

from __future__ import annotations

import socket
from pathlib import Path

from eindr_common.settings import CommonSettings

_SOURCE_MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


class HistorySettings(CommonSettings):
    history_migrations_dir: Path | None = None

    intent_url: str = "http://127.0.0.1:8202"  # TEI /embed (all-MiniLM-L6-v2)
    embed_timeout_s: float = 10.0
    reminders_url: str = "http://127.0.0.1:8103"

    # Retention: rows older than the user's preference go; the job runs this often.
    history_default_retention_days: int = 90
    history_retention_interval_s: float = 86_400.0

    # Embedding backlog: polled from the table (the row is the job).
    history_embed_interval_s: float = 0.5
    history_embed_max_attempts: int = 5

    # Habit detection.
    history_habits_interval_s: float = 86_400.0
    history_habits_window_days: int = 56
    history_habits_min_occurrences: int = 3
    history_habits_similarity: float = 0.75
    history_habits_time_window_min: int = 60

    # Search.
    history_search_candidates: int = 50
    history_search_min_similarity: float = 0.25
    history_hnsw_ef_search: int = 100
    history_exact_search_max: int = 20_000

    history_worker_consumer: str = socket.gethostname()

    @property
    def migrations_path(self) -> Path:
        return self.history_migrations_dir or _SOURCE_MIGRATIONS
