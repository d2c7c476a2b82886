"""Settings, read from SUPPORTLENS_* environment variables or a .env file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_PATH = Path("supportlens.db")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SUPPORTLENS_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        secrets_dir=None,
    )

    environment: Literal["development", "production", "test", "demo"] = "development"
    database_url: str = f"sqlite+aiosqlite:///{DEFAULT_SQLITE_PATH}"
    database_pool_size: int = Field(default=10, ge=1, le=200)
    secret_key: SecretStr = SecretStr("dev-insecure-change-me")
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
    # Clarity
    clarity_project_id: str = ""
    clarity_api_token: SecretStr = SecretStr("")
    clarity_export_base_url: str = "https://www.clarity.ms"
    clarity_recordings_base_url: str = "https://clarity.microsoft.com"
    clarity_recordings_enabled: bool = False

    # Search
    search_source_deadline_seconds: float = Field(default=3.0, gt=0, le=30)
    search_cache_seconds: int = Field(default=60, ge=0, le=3600)

    # Sessions and mapping
    mapping_min_confidence: float = Field(default=0.5, ge=0, le=1)
    recording_retention_days: int = 30

    # Privacy
    retention_days: int = Field(default=30, ge=1)
    ip_retention_days: int = Field(default=7, ge=1)

    # Jobs run inside the app unless turned off (e.g. for one-off CLI processes)
    run_jobs: bool = True

    # OIDC single sign-on (Microsoft Entra ID by default)
    oidc_enabled: bool = False
    oidc_tenant_id: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: SecretStr = SecretStr("")
    oidc_discovery_url: str = ""  # overrides the Entra URL derived from the tenant

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def cookies_secure(self) -> bool:
        if self.secure_cookies is not None:
            return self.secure_cookies
        return self.environment == "production"


@lru_cache
def get_settings() -> Settings:
    return Settings()
