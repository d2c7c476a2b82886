"""Settings, read from SUPPORTLENS_* environment variables or a .env file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

DEV_SECRET_KEY = "dev-insecure-change-me"  # noqa: S105 (refused in production)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SUPPORTLENS_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        secrets_dir=None,
    )

    environment: Literal["development", "production", "test", "demo"] = "development"
    # PostgreSQL, postgresql+asyncpg://user:password@host:5432/dbname. Unset: `supportlens serve` and
    # `supportlens demo` start an embedded PostgreSQL (db/embedded.py) with its data in
    # embedded_postgres_dir (serve) or the demo's --data-dir, and stop it on exit.
    database_url: str | None = None
    embedded_postgres_dir: Path = Path(".supportlens/postgres")
    database_pool_size: int = Field(default=10, ge=1, le=200)
    # A pooled PostgreSQL connection idle this long is pinged before use (a restart or a firewall may
    # have dropped it); busier ones are not, which saves a round trip on every checkout under load.
    database_ping_after_idle_seconds: float = Field(default=5.0, ge=0, le=3600)
    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)
    base_url: str = "http://127.0.0.1:8000"
    log_level: str = "INFO"
    log_json: bool = True

    # Agent sessions
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    session_absolute_hours: int = Field(default=12, ge=1, le=24 * 30)
    secure_cookies: bool | None = None  # None: secure in production only
    local_login_enabled: bool = True

    # Proxies
    forwarded_allow_ips: str = "127.0.0.1"

    # Redis: shared rate limits and caches across replicas when set
    redis_url: str | None = None

    # HubSpot
    hubspot_base_url: str = "https://api.hubapi.com"
    hubspot_token: SecretStr = SecretStr("")
    # Dwolla
    dwolla_base_url: str = "https://api.dwolla.com"
    dwolla_key: SecretStr = SecretStr("")
    dwolla_secret: SecretStr = SecretStr("")
    # Which Dwolla dashboard agents' links open: "" follows dwolla_base_url (api-sandbox → sandbox).
    dwolla_environment: Literal["", "sandbox", "production"] = ""
    # Dwolla webhooks (POST /api/webhooks/dwolla): the subscription's secret, and the previous one
    # while a secret is rotated (both verify until the old subscription is deleted)
    dwolla_webhook_secret: SecretStr = SecretStr("")
    dwolla_webhook_previous_secret: SecretStr = SecretStr("")
    dwolla_webhook_max_bytes: int = Field(default=16 * 1024, ge=1024, le=256 * 1024)
    # Clarity
    clarity_project_id: str = ""
    clarity_api_token: SecretStr = SecretStr("")
    clarity_export_base_url: str = "https://www.clarity.ms"
    clarity_recordings_base_url: str = "https://clarity.microsoft.com"
    clarity_recordings_enabled: bool = False
    # Data Export API: 10 calls per project per day (shared by all replicas); the schedule spends them.
    clarity_daily_call_budget: int = Field(default=10, ge=0, le=10)
    clarity_url_pulls_per_day: int = Field(default=3, ge=0, le=10)  # URL x Device insights
    clarity_traffic_pulls_per_day: int = Field(default=1, ge=0, le=10)  # site-wide totals
    clarity_pull_num_of_days: int = Field(default=1, ge=1, le=3)
    # Recordings list (undocumented): recent windows, within its own daily call budget
    clarity_recordings_interval_minutes: int = Field(default=60, ge=1, le=24 * 60)
    clarity_recordings_window_minutes: int = Field(default=120, ge=5, le=3 * 24 * 60)
    clarity_recordings_daily_calls: int = Field(default=30, ge=0, le=1000)

    # Search
    search_source_deadline_seconds: float = Field(default=3.0, gt=0, le=30)
    search_cache_seconds: int = Field(default=60, ge=0, le=3600)
    # Upstream calls (integrations/http.py): read timeout, and our own limits under the vendors' ones
    upstream_read_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    hubspot_search_per_second: int = Field(default=5, ge=1, le=100)
    hubspot_requests_per_10s: int = Field(default=100, ge=1, le=10000)

    # Sessions and mapping
    mapping_min_confidence: float = Field(default=0.5, ge=0, le=1)
    # Below the listing threshold, down to this floor, a link is a *possible* session of the customer
    # (sessions/possible.py). The engine stores candidates from 0.05 up (scoring.STORE_FLOOR).
    possible_floor: float = Field(default=0.2, ge=0.05, le=1)
    recording_retention_days: int = 30
    # Ingest (capture): limits per public site key and per client IP ("N/second|minute|hour", `limits` syntax)
    ingest_rate_limit_per_site: str = "200/second"
    ingest_rate_limit_per_ip: str = "120/minute"
    ingest_site_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    # Event timestamps further in the past/future than this are refused (clock skew, replays)
    ingest_max_event_age_days: int = Field(default=7, ge=1, le=365)
    clarity_player_base_url: str = "https://clarity.microsoft.com"

    # Privacy
    retention_days: int = Field(default=30, ge=1)
    ip_retention_days: int = Field(default=7, ge=1)

    # The task queue's worker (mapping, periodic tasks) runs inside `supportlens serve` unless turned off
    # (then `supportlens worker` processes do the work)
    run_worker: bool = True
    worker_concurrency: int = Field(default=4, ge=1, le=64)
    # This process's worker also enqueues the periodic schedule when it falls due (and catches up on a
    # run due in the last 10 minutes when it starts). Off: it only runs jobs that others enqueue.
    run_schedule: bool = True
    # A job whose worker sent no heartbeat for this long is retried (its worker died: kill -9, OOM)
    task_stalled_seconds: float = Field(default=30.0, ge=1, le=3600)
    # Move what startup made (routes, models, compiled patterns) out of the cyclic garbage collector's
    # reach, so a full collection stops scanning it on every pass. `supportlens serve` turns it on.
    gc_freeze: bool = False

    # OIDC single sign-on (Microsoft Entra ID by default)
    oidc_enabled: bool = False
    oidc_tenant_id: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: SecretStr = SecretStr("")
    oidc_discovery_url: str = ""  # overrides the Entra URL derived from the tenant

    # Login throttling: lock an account after this many failures within the lock-out window; an IP
    # address after login_ip_max_failures (shared by all replicas through Redis when redis_url is set).
    login_max_failures: int = Field(default=5, ge=1, le=1000)
    login_ip_max_failures: int = Field(default=20, ge=1, le=100000)
    login_lockout_minutes: int = Field(default=15, ge=1, le=24 * 60)

    # Spike alerts: the detector runs every five minutes, deliveries every minute (the webhook's URL
    # and signing secret are set by an admin at /admin/alerts and stored encrypted).
    alerts_enabled: bool = True
    alert_webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=30)
    alert_webhook_retry_wait_seconds: float = Field(default=1.0, ge=0, le=30)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # SUPPORTLENS_<NAME>_FILE or SUPPORTLENS_SECRETS_DIR: secrets mounted as files (see secretfiles.py).
        from supportlens.secretfiles import FileSettingsSource

        files = FileSettingsSource(settings_cls)
        return (init_settings, env_settings, files, dotenv_settings, file_secret_settings)

    @model_validator(mode="after")
    def _no_default_secret_in_production(self) -> Settings:
        if self.environment == "production" and self.secret_key.get_secret_value() in ("", DEV_SECRET_KEY):
            raise ValueError(
                "SUPPORTLENS_SECRET_KEY (or SUPPORTLENS_SECRET_KEY_FILE) must be set in production"
            )
        return self

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith("postgresql+asyncpg://"):
            raise ValueError("must start with postgresql+asyncpg://")
        return value

    def require_database_url(self) -> str:
        """The database URL, for code that runs after `serve`/`demo` has started the embedded
        server when none was configured (they put its URL in SUPPORTLENS_DATABASE_URL)."""
        if self.database_url is None:
            raise RuntimeError(
                "SUPPORTLENS_DATABASE_URL is not set (`supportlens serve` and `demo` start an embedded one)"
            )
        return self.database_url

    @property
    def cookies_secure(self) -> bool:
        if self.secure_cookies is not None:
            return self.secure_cookies
        return self.environment == "production"


@lru_cache
def get_settings() -> Settings:
    return Settings()
