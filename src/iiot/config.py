"""Settings, read from `IIOT_*` environment variables (and a `.env` file in development)."""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_JWT_SECRET_LENGTH = 32


class Settings(BaseSettings):
    # An empty variable (`IIOT_REDIS_URL=` in a compose file) means "not set", not "".
    model_config = SettingsConfigDict(
        env_prefix="IIOT_", env_file=".env", extra="ignore", env_ignore_empty=True
    )

    env: Literal["development", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # One log line per request; Prometheus metrics cover traffic without it.
    access_log: bool = True
    # Server processes of `iiot serve`; more than one needs IIOT_REDIS_URL. None: one per core
    # in production when Redis is configured, otherwise one.
    workers: int | None = Field(default=None, ge=1, le=256)
    data_dir: Path = Path(".iiot")
    # `iiot serve`: a request's headers, and each chunk of its body, must arrive within these.
    header_read_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    body_read_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    keep_alive_timeout_seconds: int = Field(default=5, ge=1, le=300)

    # Database. Unset -> embedded PostgreSQL kept in data_dir.
    database_url: str | None = None
    # Owner role URL used for migrations on an external database (defaults to database_url).
    database_owner_url: str | None = None
    database_pool_size: int = Field(default=10, ge=1, le=200)
    # A direct (session-mode) URL for what needs a session of its own: LISTEN/NOTIFY and the
    # jobs' advisory locks. Set it when IIOT_DATABASE_URL goes through PgBouncer in
    # transaction-pooling mode; defaults to IIOT_DATABASE_URL.
    database_direct_url: str | None = None
    # True when IIOT_DATABASE_URL is a transaction-pooling PgBouncer: no server-side prepared
    # statements. Inferred when IIOT_DATABASE_DIRECT_URL is set.
    database_pooled: bool | None = None

    jwt_secret: str | None = None
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    jwt_issuer: str = "iiot"
    jwt_audience: str = "iiot-api"
    access_token_ttl_seconds: int = Field(default=900, ge=60, le=86400)
    refresh_token_ttl_seconds: int = Field(default=30 * 86400, ge=3600, le=366 * 86400)

    bootstrap_admin_email: str | None = None
    bootstrap_admin_password: str | None = None
    bootstrap_tenant_name: str = "Operations"
    bootstrap_tenant_slug: str = "operations"

    # Shared rate-limit counters (and usage counters) for every process. Required when more
    # than one worker serves.
    redis_url: str | None = Field(
        default=None, pattern=r"^(redis|rediss|redis\+unix|redis\+sentinel|redis\+cluster)://"
    )
    # Comma-separated addresses or networks of reverse proxies whose X-Forwarded-For is
    # believed; from anyone else the header is ignored.
    trusted_proxies: str = ""

    # Login throttling: password checks allowed per window per account and client address, per
    # client address, and per account from addresses without a recent successful login.
    login_max_failures_per_account: int = Field(default=5, ge=1, le=1000)
    login_max_failures_per_ip: int = Field(default=20, ge=1, le=100_000)
    login_max_attempts_per_account_global: int = Field(default=30, ge=1, le=100_000)
    login_failure_window_seconds: int = Field(default=300, ge=1, le=86400)
    login_known_address_days: int = Field(default=30, ge=1, le=3650)

    # Usage metering: counters are kept in memory (or Redis) and written this often.
    usage_flush_seconds: float = Field(default=30.0, gt=0, le=3600)

    # Mail.
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    mail_from: str = "iiot@localhost"
    public_url: str = "http://127.0.0.1:8000"
    invitation_ttl_days: int = Field(default=7, ge=1, le=90)

    # MQTT endpoint (ThingsBoard device and gateway API) inside `iiot serve`. Port 0 disables
    # it; the host defaults to `host`. TLS listens on `mqtt_tls_port` when cert and key are set.
    mqtt_port: int = Field(default=1883, ge=0, le=65535)
    mqtt_host: str | None = None
    mqtt_tls_port: int = Field(default=8883, ge=0, le=65535)
    mqtt_tls_cert: Path | None = None
    mqtt_tls_key: Path | None = None
    # A connection that sends no CONNECT within this time is dropped.
    mqtt_connect_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    mqtt_max_packet_size: int = Field(default=65_536, ge=1024, le=16 * 1024 * 1024)
    # Unacknowledged QoS 1 messages per connection before reading pauses (MQTT 5 Receive Maximum).
    mqtt_max_inflight: int = Field(default=100, ge=1, le=65535)

    metrics_enabled: bool = True
    # Bearer token Prometheus must send to /metrics. Without one, production refuses to serve
    # the metrics unless they are declared public.
    metrics_token: str | None = Field(default=None, min_length=16, max_length=256)
    metrics_public: bool = False
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
        try:
            self.trusted_proxy_networks()
        except ValueError as exc:
            raise ValueError(f"IIOT_TRUSTED_PROXIES: {exc}") from exc
        return self

    def trusted_proxy_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        return tuple(
            ip_network(part.strip(), strict=False)
            for part in self.trusted_proxies.split(",")
            if part.strip()
        )

    def session_database_url(self) -> str | None:
        return self.database_direct_url or self.database_url

    def worker_count(self, requested: int | None = None) -> int:
        """How many server processes `iiot serve` runs."""
        if requested is not None:
            return requested
        if self.workers is not None:
            return self.workers
        if self.env == "production" and self.redis_url is not None:
            return os.cpu_count() or 1
        return 1

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
