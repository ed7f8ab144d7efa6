"""Settings, read from `IIOT_*` environment variables (and a `.env` file in development)."""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_JWT_SECRET_LENGTH = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IIOT_", env_file=".env", extra="ignore")

    env: Literal["development", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # One log line per request; Prometheus metrics cover traffic without it.
    access_log: bool = True
    # Server processes of `iiot serve`; None: one per core in production, one in development.
    workers: int | None = Field(default=None, ge=1, le=256)
    data_dir: Path = Path(".iiot")

    # Database. Unset -> embedded PostgreSQL kept in data_dir.
    database_url: str | None = None
    # Owner role URL used for migrations on an external database (defaults to database_url).
    database_owner_url: str | None = None
    database_pool_size: int = Field(default=10, ge=1, le=200)

    jwt_secret: str | None = None
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    jwt_issuer: str = "iiot"
    jwt_audience: str = "iiot-api"
    access_token_ttl_seconds: int = Field(default=900, ge=60, le=86400)
    refresh_token_ttl_seconds: int = Field(default=30 * 86400, ge=3600)

    bootstrap_admin_email: str | None = None
    bootstrap_admin_password: str | None = None
    bootstrap_tenant_name: str = "Operations"
    bootstrap_tenant_slug: str = "operations"

    redis_url: str | None = None

    # Login throttling: failures allowed per window, per account and per client address.
    login_max_failures_per_account: int = Field(default=5, ge=1)
    login_max_failures_per_ip: int = Field(default=20, ge=1)
    login_failure_window_seconds: int = Field(default=300, ge=1)

    # Mail.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    mail_from: str = "iiot@localhost"
    public_url: str = "http://127.0.0.1:8000"
    invitation_ttl_days: int = Field(default=7, ge=1, le=90)

    metrics_enabled: bool = True
    webhook_allow_private: bool = False
    run_background_jobs: bool = True

    @model_validator(mode="after")
    def _production_needs_real_secrets(self) -> Settings:
        if self.env == "production":
            if not self.jwt_secret or len(self.jwt_secret) < MIN_JWT_SECRET_LENGTH:
                raise ValueError(
                    f"IIOT_JWT_SECRET must be set to at least {MIN_JWT_SECRET_LENGTH} characters "
                    "in production"
                )
            if self.database_url is None:
                raise ValueError("IIOT_DATABASE_URL must be set in production")
        return self

    def worker_count(self, requested: int | None = None) -> int:
        """How many server processes `iiot serve` runs."""
        if requested is not None:
            return requested
        if self.workers is not None:
            return self.workers
        return (os.cpu_count() or 1) if self.env == "production" else 1

    def resolved_jwt_secret(self) -> str:
        """The configured secret, or in development one generated once and kept in data_dir."""
        if self.jwt_secret:
            return self.jwt_secret
        path = self.data_dir / "jwt_secret"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(48)
        path.write_text(value)
        path.chmod(0o600)
        return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
