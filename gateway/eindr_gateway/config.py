"""Gateway settings: which service owns which path, what each plan may do, and limits."""

from __future__ import annotations

from functools import lru_cache

from eindr_common.plans import ANONYMOUS_RATE_LIMIT, RATE_LIMITS
from eindr_common.settings import CommonSettings
from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import SettingsConfigDict

GOOGLE_CERTS_URL = "https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"

# First path segment after /v1/ (up to '/', ':' or '?') -> owning service.
DEFAULT_ROUTES: dict[str, str] = {
    "auth": "auth",
    "users": "users",
    "reminders": "reminders",
    "notifications": "reminders",
    "notes": "notes",
    "ledger": "ledger",
    "friends": "friends",
    "calendar": "calendar",
    "history": "history",
    "suggestions": "history",
    "assistant": "assistant",
    "admin": "audit",
    "audit": "audit",
}

DEFAULT_SERVICE_URLS: dict[str, str] = {
    "auth": "http://127.0.0.1:8101",
    "users": "http://127.0.0.1:8102",
    "reminders": "http://127.0.0.1:8103",
    "notes": "http://127.0.0.1:8104",
    "ledger": "http://127.0.0.1:8105",
    "friends": "http://127.0.0.1:8106",
    "calendar": "http://127.0.0.1:8107",
    "history": "http://127.0.0.1:8108",
    "assistant": "http://127.0.0.1:8109",
    "audit": "http://127.0.0.1:8110",
}

# (method or "*", path prefix) -> feature name in eindr_common.plans.FEATURES.
DEFAULT_FEATURE_RULES: list[tuple[str, str, str]] = [
    ("POST", "/v1/reminders:bulk", "bulk_reminders"),
    ("POST", "/v1/reminders/jobs", "bulk_reminders"),
    ("*", "/v1/calendar", "calendar_sync"),
    ("GET", "/v1/ledger/export", "ledger_export"),
]

# Path prefix -> max request body in bytes; the longest matching prefix wins.
DEFAULT_BODY_LIMITS: dict[str, int] = {
    "/v1/": 1 * 1024 * 1024,
    "/v1/notes": 26 * 1024 * 1024,
    "/v1/assistant/voice": 26 * 1024 * 1024,
    "/v1/reminders:bulk": 16 * 1024 * 1024,
    "/v1/reminders/jobs": 16 * 1024 * 1024,
}

# Paths reachable without a Firebase token (authenticated otherwise: Google's channel
# token on calendar webhooks, the URL's own signature on a note's audio).
DEFAULT_PUBLIC_PATHS: tuple[str, ...] = ("/v1/calendar/webhooks/",)
# Public paths given as regular expressions.
DEFAULT_PUBLIC_PATTERNS: tuple[str, ...] = (r"^/v1/notes/[0-9a-fA-F-]{36}/audio$",)


class GatewaySettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="EINDR_GATEWAY_", extra="ignore", env_nested_delimiter="__")

    # Shared settings keep their EINDR_ names.
    env: str = Field("development", validation_alias=AliasChoices("EINDR_ENV"))  # type: ignore[assignment]
    redis_url: str = Field("redis://127.0.0.1:6379/0", validation_alias=AliasChoices("EINDR_REDIS_URL"))
    internal_token_secret: str = Field(
        "dev-internal-token-secret-change-me-0123456789", validation_alias=AliasChoices("EINDR_INTERNAL_TOKEN_SECRET")
    )
    log_level: str = Field("INFO", validation_alias=AliasChoices("EINDR_LOG_LEVEL"))
    sentry_dsn: str | None = Field(None, validation_alias=AliasChoices("EINDR_SENTRY_DSN", "SENTRY_DSN"))

    firebase_project_id: str = Field("eindr-local", validation_alias=AliasChoices("EINDR_FIREBASE_PROJECT_ID"))
    firebase_certs_url: str = GOOGLE_CERTS_URL
    # The Firebase convention: when set, unsigned emulator tokens are accepted.
    firebase_auth_emulator_host: str | None = Field(None, validation_alias=AliasChoices("FIREBASE_AUTH_EMULATOR_HOST"))
    clock_skew_s: int = Field(5, ge=0, le=60)
    token_cache_size: int = 50_000
    # Backstop lifetime of a user's cached plan/revocation/overrides; changes are announced
    # and applied at once (account_state.py), this only bounds a hand edit in redis-cli.
    account_state_ttl_s: float = Field(5.0, ge=0, le=60)

    routes: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_ROUTES))
    service_urls: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_SERVICE_URLS))
    feature_rules: list[tuple[str, str, str]] = Field(default_factory=lambda: list(DEFAULT_FEATURE_RULES))
    body_limits: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_BODY_LIMITS))
    public_paths: tuple[str, ...] = DEFAULT_PUBLIC_PATHS
    public_patterns: tuple[str, ...] = DEFAULT_PUBLIC_PATTERNS
    rate_limits: dict[str, str] = Field(default_factory=lambda: dict(RATE_LIMITS))
    anonymous_rate_limit: str = ANONYMOUS_RATE_LIMIT
    cors_origins: list[str] = Field(default_factory=lambda: ["http://localhost:3000", "capacitor://localhost"])
    upstream_connect_timeout_s: float = 2.0
    upstream_read_timeout_s: float = 30.0
    # Upstream OpenAPI documents are re-fetched at most this often for /openapi.json.
    openapi_refresh_s: float = 30.0

    @model_validator(mode="after")
    def _refuse_emulator_in_production(self) -> GatewaySettings:
        if self.env == "production" and self.firebase_auth_emulator_host:
            raise ValueError("FIREBASE_AUTH_EMULATOR_HOST is set: the gateway refuses emulator tokens in production")
        if self.env == "production" and self.firebase_project_id == "eindr-local":
            raise ValueError("EINDR_FIREBASE_PROJECT_ID must be set in production")
        return self


@lru_cache
def gateway_settings() -> GatewaySettings:
    return GatewaySettings()
