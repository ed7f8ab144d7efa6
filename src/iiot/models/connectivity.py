"""Device attributes and RPC calls to devices (tenant-owned; row-level security applies)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKeyConstraint,
    Identity,
    Index,
    String,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from iiot.models.base import Base

ATTRIBUTE_SCOPES = ("client", "shared", "server")
RPC_STATUSES = ("queued", "delivered", "successful", "timeout", "offline")


class DeviceAttribute(Base):
    """One attribute of a device: `client` (written by the device), `shared` (written by
    users, pushed to the device), `server` (users only). The value is any JSON value."""

    __tablename__ = "device_attributes"
    __table_args__ = (
        CheckConstraint("scope in ('client','shared','server')", name="scope_valid"),
        ForeignKeyConstraint(
            ["tenant_id", "device_id"],
            ["devices.tenant_id", "devices.id"],
            ondelete="cascade",
            name="fk_device_attributes_tenant_id_device_id_devices",
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    device_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(8), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class DeviceRpc(Base):
    """A server-side RPC call to a device, kept so that its outcome can be shown."""

    __tablename__ = "device_rpc"
    __table_args__ = (
        CheckConstraint(
            "status in ('queued','delivered','successful','timeout','offline')",
            name="status_valid",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "device_id"],
            ["devices.tenant_id", "devices.id"],
            ondelete="cascade",
            name="fk_device_rpc_tenant_id_device_id_devices",
        ),
        Index("ix_device_rpc_tenant_id_device_id_id", "tenant_id", "device_id", "id"),
        Index(
            "ix_device_rpc_waiting",
            "expires_at",
            postgresql_where=text("status in ('queued','delivered') and not oneway"),
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    device_id: Mapped[uuid.UUID]
    method: Mapped[str] = mapped_column(String(255))
    params: Mapped[Any | None] = mapped_column(JSONB)
    oneway: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    status: Mapped[str] = mapped_column(String(16), default="queued", server_default="queued")
    timeout_ms: Mapped[int]
    response: Mapped[Any | None] = mapped_column(JSONB)
    created_by: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
