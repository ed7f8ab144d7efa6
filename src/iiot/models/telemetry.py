"""Telemetry: the series dictionary, the points, and the per-day usage counter (tenant-owned;
row-level security applies).

`telemetry_series` names each `(device, key)` of a tenant once with a never-reused id;
`telemetry` holds the points keyed by `(tenant_id, series_id, ts)`, RANGE-partitioned by `ts`
into daily partitions `telemetry_pYYYYMMDD` plus a DEFAULT partition (the migration and
`iiot.telemetry.partitions` create them; the ORM cannot express partitioning). Points carry no
foreign key: ingest locks the batch's devices instead, and the points of a removed series
(listed in `telemetry_series_removed` by a trigger) are deleted by a job. The primary key
makes a re-sent point a no-op.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from iiot.models.base import Base


class TelemetrySeries(Base):
    __tablename__ = "telemetry_series"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "device_id"],
            ["devices.tenant_id", "devices.id"],
            ondelete="cascade",
            name="fk_telemetry_series_tenant_id_device_id_devices",
        ),
        UniqueConstraint(
            "tenant_id", "device_id", "key", name="uq_telemetry_series_tenant_id_device_id_key"
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    device_id: Mapped[uuid.UUID]
    key: Mapped[str] = mapped_column(Text(collation="C"))


class TelemetryPoint(Base):
    __tablename__ = "telemetry"
    __table_args__ = ({"postgresql_partition_by": "RANGE (ts)"},)

    tenant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    series_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ts: Mapped[datetime] = mapped_column(primary_key=True)
    value_num: Mapped[float | None] = mapped_column(Double)
    value_bool: Mapped[bool | None]
    value_str: Mapped[str | None] = mapped_column(Text)
    unit: Mapped[str | None] = mapped_column(Text)
    quality: Mapped[str | None] = mapped_column(Text)


class TelemetrySeriesRemoved(Base):
    """Series whose points the `telemetry-removed-series` job still has to delete."""

    __tablename__ = "telemetry_series_removed"

    tenant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    series_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    removed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )


class TelemetryDay(Base):
    """A UTC day on which the tenant has at least one stored point (kept by triggers on
    `telemetry`, migration 0016): the tenant's oldest day with data is one index probe."""

    __tablename__ = "telemetry_days"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="cascade"), primary_key=True
    )
    day: Mapped[date] = mapped_column(primary_key=True)


class TenantUsageDaily(Base):
    """Points accepted per tenant and UTC day; the daily quota is checked against it."""

    __tablename__ = "tenant_usage_daily"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="cascade"), primary_key=True
    )
    day: Mapped[date] = mapped_column(primary_key=True)
    telemetry_points: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
