"""Wire format of tenant management and tiers (field names kept from the original platform)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from iiot.validation import Int32Limit, JsonObject, RetentionDays

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"
COLOR_PATTERN = r"^#(?:[0-9a-fA-F]{3}){1,2}$"
MAX_SETTINGS_BYTES = 8192
MAX_SETTINGS_KEYS = 50

TenantStatus = Literal["active", "suspended", "trial", "churned"]
Limit = Int32Limit
Feature = Annotated[str, Field(min_length=1, max_length=64)]
TierName = Annotated[str, Field(min_length=1, max_length=32)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Branding(StrictModel):
    logo_url: str | None = Field(default=None, max_length=2048, pattern=r"^https?://\S+$")
    primary_color: str | None = Field(default=None, pattern=COLOR_PATTERN)
    secondary_color: str | None = Field(default=None, pattern=COLOR_PATTERN)


def _check_settings(value: dict[str, Any]) -> dict[str, Any]:
    # Runs after JsonObject's checks, so the value is bounded, storable JSON.
    if len(value) > MAX_SETTINGS_KEYS:
        raise ValueError(f"at most {MAX_SETTINGS_KEYS} settings")
    if any(len(k) > 64 for k in value):
        raise ValueError("setting names are at most 64 characters")
    if len(orjson.dumps(value)) > MAX_SETTINGS_BYTES:
        raise ValueError(f"settings are at most {MAX_SETTINGS_BYTES} bytes of JSON")
    return value


TenantSettings = Annotated[JsonObject, AfterValidator(_check_settings)]


class TenantCreate(StrictModel):
    name: str = Field(min_length=1, max_length=200)
    slug: str = Field(min_length=3, max_length=63, pattern=SLUG_PATTERN)
    tier: TierName
    status: TenantStatus = "active"
    max_devices: Limit | None = None
    max_users: Limit | None = None
    max_telemetry_points_per_day: Limit | None = None
    max_retention_days: RetentionDays | None = None
    api_requests_per_minute: Limit | None = None
    max_device_messages_per_minute: Limit | None = None
    max_points_per_second: Limit | None = None
    enabled_features: list[Feature] = Field(default_factory=list, max_length=50)
    branding: Branding = Field(default_factory=Branding)
    settings: TenantSettings = Field(default_factory=dict)


class TenantUpdate(StrictModel):
    """Any subset; a tenant admin may send only name, branding and settings.

    A `max_*` sent as null goes back to the tier's default."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    slug: str | None = Field(default=None, min_length=3, max_length=63, pattern=SLUG_PATTERN)
    tier: TierName | None = None
    status: TenantStatus | None = None
    max_devices: Limit | None = None
    max_users: Limit | None = None
    max_telemetry_points_per_day: Limit | None = None
    max_retention_days: RetentionDays | None = None
    api_requests_per_minute: Limit | None = None
    max_device_messages_per_minute: Limit | None = None
    max_points_per_second: Limit | None = None
    enabled_features: list[Feature] | None = Field(default=None, max_length=50)
    branding: Branding | None = None
    settings: TenantSettings | None = None


TENANT_ADMIN_FIELDS = frozenset({"name", "branding", "settings"})
NULLABLE_FIELDS = frozenset(
    {
        "max_devices",
        "max_users",
        "max_telemetry_points_per_day",
        "max_retention_days",
        "api_requests_per_minute",
        "max_device_messages_per_minute",
        "max_points_per_second",
    }
)


class BrandingOut(BaseModel):
    logo_url: str | None = None
    primary_color: str | None = None
    secondary_color: str | None = None


class EffectiveLimitsOut(BaseModel):
    max_devices: int | None
    max_users: int | None
    max_telemetry_points_per_day: int | None
    max_retention_days: int | None
    api_requests_per_minute: int | None
    max_device_messages_per_minute: int | None
    max_points_per_second: int | None


class TenantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    slug: str
    status: str
    tier: str
    max_devices: int | None
    max_users: int | None
    max_telemetry_points_per_day: int | None
    max_retention_days: int | None
    api_requests_per_minute: int | None
    max_device_messages_per_minute: int | None
    max_points_per_second: int | None
    effective_limits: EffectiveLimitsOut
    enabled_features: list[str]
    branding: BrandingOut
    settings: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class TenantList(BaseModel):
    tenants: list[TenantOut]
    total: int
    page: int
    limit: int


class TenantStats(BaseModel):
    tenant_id: uuid.UUID
    device_count: int
    user_count: int
    invited_count: int
    rule_count: int
    alerts_24h: int
    active_alerts: int
    telemetry_points_today: int
    device_quota_percent: float | None
    user_quota_percent: float | None
    telemetry_quota_percent: float | None


class SeatUsage(BaseModel):
    used: int
    limit: int | None
    percentage: float | None


class TelemetryUsage(BaseModel):
    used_today: int
    limit_per_day: int | None
    percentage: float | None
    resets_at: datetime


class RetentionUsage(BaseModel):
    current_days: int | None
    oldest_data_age_days: int | None


class RateLimitOut(BaseModel):
    """A rate limit as enforced: at most `limit` per `window_seconds` (None: unlimited)."""

    limit: int | None
    window_seconds: int


class RateLimits(BaseModel):
    api_requests_per_minute: RateLimitOut
    max_device_messages_per_minute: RateLimitOut
    max_points_per_second: RateLimitOut


class TenantQuotas(BaseModel):
    devices: SeatUsage
    users: SeatUsage
    telemetry_points: TelemetryUsage
    data_retention: RetentionUsage
    rate_limits: RateLimits


class TierOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    display_name: str
    max_devices: int | None
    max_users: int | None
    max_telemetry_points_per_day: int | None
    max_retention_days: int | None
    api_requests_per_minute: int | None
    max_device_messages_per_minute: int | None
    max_points_per_second: int | None
    features: list[str]


class TierUpdate(StrictModel):
    """Any subset; a limit sent as null means unlimited."""

    display_name: str | None = Field(default=None, min_length=1, max_length=64)
    max_devices: Limit | None = None
    max_users: Limit | None = None
    max_telemetry_points_per_day: Limit | None = None
    max_retention_days: RetentionDays | None = None
    api_requests_per_minute: Limit | None = None
    max_device_messages_per_minute: Limit | None = None
    max_points_per_second: Limit | None = None
    features: list[Feature] | None = Field(default=None, max_length=50)


class DayUsage(BaseModel):
    day: date
    telemetry_points: int


class DailyUsage(BaseModel):
    """Telemetry points accepted per UTC day, oldest first, every day of the range listed."""

    days: list[DayUsage]
