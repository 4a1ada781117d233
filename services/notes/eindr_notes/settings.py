"""Settings of the notes service (``EINDR_*``; the shared ones come from CommonSettings)."""

from __future__ import annotations

import socket
from functools import lru_cache
from pathlib import Path
from typing import Literal

from eindr_common.settings import CommonSettings

_SOURCE_MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


class NotesSettings(CommonSettings):
    notes_migrations_dir: Path | None = None

    # Inference servers (standard protocols: OpenAI audio API, TEI /embed).
    stt_url: str = "http://127.0.0.1:8201"
    stt_model: str = "whisper-1"
    stt_timeout_s: float = 120.0
    intent_url: str = "http://127.0.0.1:8202"
    embed_timeout_s: float = 10.0

    # Notes friends share with the caller are searchable and readable (friends service).
    friends_url: str = "http://127.0.0.1:8106"
    notes_shared_max: int = 1000

    # Uploads.
    notes_max_audio_bytes: int = 25 * 1024 * 1024

    # Audio storage: local disk (a volume) or any S3-compatible bucket through boto3.
    notes_storage: Literal["local", "s3"] = "local"
    notes_storage_dir: Path = Path("var/notes-audio")
    notes_s3_bucket: str | None = None
    notes_s3_prefix: str = "notes-audio/"
    notes_s3_endpoint_url: str | None = None
    notes_s3_region: str | None = None
    # Signed audio URLs (local storage: served by this service; S3: presigned by S3).
    notes_signed_url_ttl_s: int = 300
    notes_public_base_url: str = ""  # e.g. https://api.eindr.app; empty = a path-only URL

    # Background jobs (worker process).
    notes_job_max_attempts: int = 4
    notes_job_retry_base_s: float = 2.0
    notes_sweep_interval_s: float = 60.0
    notes_stale_after_s: float = 300.0  # pending/unembedded this long: enqueued again
    notes_worker_consumer: str = socket.gethostname()
    notes_worker_concurrency: int = 2

    # Search.
    notes_search_candidates: int = 50
    notes_search_min_similarity: float = 0.25
    notes_hnsw_ef_search: int = 200  # recall@10 0.99 at 1M with the m 24 graph (docs/benchmarks.md)
    # Up to this many notes a user's semantic search is exact (their rows only); beyond it
    # the HNSW index serves (pgvector 0.6 post-filters HNSW results by user).
    notes_exact_search_max: int = 20_000

    @property
    def migrations_path(self) -> Path:
        return self.notes_migrations_dir or _SOURCE_MIGRATIONS


@lru_cache
def get_settings() -> NotesSettings:
    return NotesSettings()
