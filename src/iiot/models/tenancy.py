"""Platform tables: tiers and tenants (not tenant-owned; reached through the system session)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from iiot.models.base import Base, Timestamps, new_id

TENANT_STATUSES = ("active", "suspended", "trial", "churned")


RETENTION_RANGE = "max_retention_days between 1 and 36500"


class Tier(Base, Timestamps):
    __tablename__ = "tiers"
    __table_args__ = (CheckConstraint(RETENTION_RANGE, name="max_retention_days_range"),)

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(64))
    max_devices: Mapped[int | None]
    max_users: Mapped[int | None]
    max_telemetry_points_per_day: Mapped[int | None]
    max_retention_days: Mapped[int | None]
    api_requests_per_minute: Mapped[int | None]
    max_device_messages_per_minute: Mapped[int | None]
    max_points_per_second: Mapped[int | None]
    features: Mapped[list[str]] = mapped_column(server_default=text("'[]'::jsonb"), default=list)


class Tenant(Base, Timestamps):
    __tablename__ = "tenants"
    __table_args__ = (
        CheckConstraint("status in ('active','suspended','trial','churned')", name="status_valid"),
        CheckConstraint("slug ~ '^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$'", name="slug_format"),
        CheckConstraint(RETENTION_RANGE, name="max_retention_days_range"),
        Index("ix_tenants_slug", "slug", unique=True),
        Index("ix_tenants_status_tier", "status", "tier"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(63))
    status: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    tier: Mapped[str] = mapped_column(ForeignKey("tiers.name", onupdate="cascade"))
    max_devices: Mapped[int | None]
    max_users: Mapped[int | None]
    max_telemetry_points_per_day: Mapped[int | None]
    max_retention_days: Mapped[int | None]
    api_requests_per_minute: Mapped[int | None]
    max_device_messages_per_minute: Mapped[int | None]
    max_points_per_second: Mapped[int | None]
    enabled_features: Mapped[list[str]] = mapped_column(
        server_default=text("'[]'::jsonb"), default=list
    )
    branding: Mapped[dict[str, Any]] = mapped_column(
        server_default=text("'{}'::jsonb"), default=dict
    )
    settings: Mapped[dict[str, Any]] = mapped_column(
        server_default=text("'{}'::jsonb"), default=dict
    )
    deleted_at: Mapped[datetime | None]
