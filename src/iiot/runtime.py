"""The objects one running process shares: settings, database, token codec, rate counters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from iiot.auth.tokens import TokenCodec
from iiot.config import Settings
from iiot.db.session import Database
from iiot.quotas.ratelimit import RateCounter, make_rate_counter


@dataclass
class Runtime:
    settings: Settings
    db: Database
    tokens: TokenCodec
    rate: RateCounter
    # Per-domain services that need process-wide state (caches, workers) register here.
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings, database_url: str) -> Runtime:
        return cls(
            settings=settings,
            db=Database(database_url, pool_size=settings.database_pool_size),
            tokens=TokenCodec(
                settings.resolved_jwt_secret(),
                algorithm=settings.jwt_algorithm,
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                ttl_seconds=settings.access_token_ttl_seconds,
            ),
            rate=make_rate_counter(settings.redis_url),
        )


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None
