"""Telemetry points and the per-day usage counter (tenant-owned; row-level security applies).

`telemetry` is RANGE-partitioned by `ts` into daily partitions `telemetry_pYYYYMMDD` plus a
DEFAULT partition; the migration and `iiot.telemetry.partitions` create them (the ORM cannot
express partitioning). The primary key makes a re-sent point a no-op.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, Double, ForeignKey, ForeignKeyConstraint, Text
from sqlalchemy.orm import Mapped, mapped_column

from iiot.models.base import Base


class TelemetryPoint(Base):
    __tablename__ = "telemetry"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "device_id"],
            ["devices.tenant_id", "devices.id"],
            ondelete="cascade",
            name="fk_telemetry_tenant_id_device_id_devices",
        ),
        {"postgresql_partition_by": "RANGE (ts)"},
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    device_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(Text(collation="C"), primary_key=True)
    ts: Mapped[datetime] = mapped_column(primary_key=True)
    value_num: Mapped[float | None] = mapped_column(Double)
    value_bool: Mapped[bool | None]
    value_str: Mapped[str | None] = mapped_column(Text)
    unit: Mapped[str | None] = mapped_column(Text)
    quality: Mapped[str | None] = mapped_column(Text)


class TenantUsageDaily(Base):
    """Points accepted per tenant and UTC day; the daily quota is checked against it."""

    __tablename__ = "tenant_usage_daily"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="cascade"), primary_key=True
    )
    day: Mapped[date] = mapped_column(primary_key=True)
    telemetry_points: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
