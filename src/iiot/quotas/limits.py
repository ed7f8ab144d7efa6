"""Effective limits: a tenant's own `max_*` value overrides its tier's; None is unlimited."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from iiot.models.tenancy import Tenant, Tier

LIMIT_FIELDS = (
    "max_devices",
    "max_users",
    "max_telemetry_points_per_day",
    "max_retention_days",
    "api_requests_per_minute",
    "max_device_messages_per_minute",
    "max_points_per_second",
)
# The rate limits among them (enforced per request or message, not per day or seat).
RATE_FIELDS = ("api_requests_per_minute", "max_device_messages_per_minute", "max_points_per_second")


@dataclass(frozen=True)
class EffectiveLimits:
    max_devices: int | None
    max_users: int | None
    max_telemetry_points_per_day: int | None
    max_retention_days: int | None
    api_requests_per_minute: int | None
    max_device_messages_per_minute: int | None
    max_points_per_second: int | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def effective_limits(tenant: Tenant, tier: Tier | None) -> EffectiveLimits:
    def pick(name: str) -> int | None:
        own = getattr(tenant, name, None)
        if own is not None:
            return int(own)
        inherited = getattr(tier, name, None) if tier is not None else None
        return int(inherited) if inherited is not None else None

    return EffectiveLimits(**{name: pick(name) for name in LIMIT_FIELDS})


def percentage(used: int, limit: int | None) -> float | None:
    if limit is None:
        return None
    if limit <= 0:
        return 100.0
    return round(100.0 * used / limit, 2)
