"""Devices and their credentials (tenant-owned; row-level security applies)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    String,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from iiot.models.base import Base, Timestamps, new_id

# `online`/`offline` are kept current by the last-seen flush job; `disabled` is set by a
# developer and makes the device's credentials refuse ingest until it is enabled again.
DEVICE_STATUSES = ("online", "offline", "disabled")


class Device(Base, Timestamps):
    __tablename__ = "devices"
    __table_args__ = (
        CheckConstraint("status in ('online','offline','disabled')", name="status_valid"),
        Index("ix_devices_tenant_id_type", "tenant_id", "type"),
        Index("ix_devices_tenant_id_area", "tenant_id", "area"),
        Index("ix_devices_tenant_id_status", "tenant_id", "status"),
        Index("ix_devices_tenant_id_name", "tenant_id", "name"),
        # A gateway's sub-devices are found by name; one name per gateway.
        Index(
            "ix_devices_tenant_id_gateway_id_name",
            "tenant_id",
            "gateway_id",
            "name",
            unique=True,
            postgresql_where=text("gateway_id is not null"),
        ),
        ForeignKeyConstraint(
            ["tenant_id", "gateway_id"],
            ["devices.tenant_id", "devices.id"],
            ondelete="SET NULL (gateway_id)",
            name="fk_devices_tenant_id_gateway_id_devices",
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="cascade"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str | None] = mapped_column(String(64))
    location: Mapped[str | None] = mapped_column(String(200))
    area: Mapped[str | None] = mapped_column(String(100))
    protocol: Mapped[str | None] = mapped_column(String(32))
    config: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"), default=dict)
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", server_default=text("'{}'::jsonb"), default=dict
    )
    status: Mapped[str] = mapped_column(String(16), default="offline", server_default="offline")
    last_seen_at: Mapped[datetime | None]
    # A gateway speaks for sub-devices; a sub-device names the gateway that created it.
    is_gateway: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    gateway_id: Mapped[uuid.UUID | None]
    # When the device's last live session (MQTT) closed; it is offline from then until it is
    # heard from again.
    disconnected_at: Mapped[datetime | None]


class DeviceCredential(Base):
    """A device token, stored only as its SHA-256 digest. At most one unrevoked per device."""

    __tablename__ = "device_credentials"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "device_id"],
            ["devices.tenant_id", "devices.id"],
            ondelete="cascade",
            name="fk_device_credentials_tenant_id_device_id_devices",
        ),
        Index("ix_device_credentials_token_hash", "token_hash", unique=True),
        Index("ix_device_credentials_tenant_id_device_id", "tenant_id", "device_id"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    device_id: Mapped[uuid.UUID]
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    revoked_at: Mapped[datetime | None]
