"""What other domains may read and do with a tenant's devices: the few operations the device
sessions (connectivity) and the analytics need, and nothing else.

Each takes the tenant's session and context; every statement is filtered by its tenant.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from iiot.db.session import TenantSession
from iiot.devices.repository import DeviceRepository, device_fields
from iiot.models.devices import Device
from iiot.tenancy.context import TenantContext

__all__ = [
    "add",
    "count",
    "device",
    "device_fields",
    "exists",
    "mark_connected",
    "mark_disconnected",
]


async def device(session: TenantSession, ctx: TenantContext, device_id: uuid.UUID) -> Device | None:
    return await DeviceRepository(session, ctx).get(device_id)


async def exists(session: TenantSession, ctx: TenantContext, device_id: uuid.UUID) -> bool:
    return await DeviceRepository(session, ctx).exists(device_id)


async def count(session: TenantSession, ctx: TenantContext) -> int:
    """The tenant's devices (the seats they take)."""
    return await DeviceRepository(session, ctx).count()


async def add(session: TenantSession, ctx: TenantContext, new: Device) -> Device:
    """Insert a device of the context's tenant (the caller took its seat)."""
    return await DeviceRepository(session, ctx).add(new)


async def mark_connected(
    session: TenantSession, ctx: TenantContext, device_id: uuid.UUID, at: datetime
) -> None:
    """A live session opened: heard from now, no longer disconnected."""
    await DeviceRepository(session, ctx).mark_connected(device_id, at)


async def mark_disconnected(
    session: TenantSession, ctx: TenantContext, device_id: uuid.UUID, at: datetime
) -> None:
    """The last live session closed: offline until heard from again."""
    await DeviceRepository(session, ctx).mark_disconnected(device_id, at)
