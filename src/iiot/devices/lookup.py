"""What other domains may read and do with a tenant's devices, without reaching into the device
repository: the few operations the device sessions (connectivity), their hub and the analytics
need, and nothing else.

Each takes the tenant's session and context (the token look-up a system session); every
statement is filtered by its tenant.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from iiot.db.session import TenantSession
from iiot.devices.repository import (
    CREDENTIALS_CHANNEL,
    TENANT_PAYLOAD_PREFIX,
    DeviceRepository,
    DeviceTokenRepository,
    TokenOwner,
    device_fields,
)
from iiot.models.devices import Device
from iiot.tenancy.context import TenantContext

__all__ = [
    "CREDENTIALS_CHANNEL",
    "DeviceState",
    "add",
    "count",
    "credential_notice",
    "device_fields",
    "device_state",
    "exists",
    "mark_connected",
    "mark_disconnected",
    "token_owner",
]


@dataclass(frozen=True, slots=True)
class DeviceState:
    status: str
    is_gateway: bool


async def exists(session: TenantSession, ctx: TenantContext, device_id: uuid.UUID) -> bool:
    return await DeviceRepository(session, ctx).exists(device_id)


async def count(session: TenantSession, ctx: TenantContext) -> int:
    """The tenant's devices (the seats they take)."""
    return await DeviceRepository(session, ctx).count()


async def add(session: TenantSession, ctx: TenantContext, new: Device) -> Device:
    """Insert a device of the context's tenant (the caller took its seat)."""
    return await DeviceRepository(session, ctx).add(new)


async def mark_connected(
    session: TenantSession, ctx: TenantContext, device_ids: Collection[uuid.UUID], at: datetime
) -> None:
    """Live sessions of these devices opened: heard from now, no longer disconnected."""
    await DeviceRepository(session, ctx).mark_connected(device_ids, at)


async def mark_disconnected(
    session: TenantSession, ctx: TenantContext, device_ids: Collection[uuid.UUID], at: datetime
) -> None:
    """The last live sessions of these devices closed: offline until heard from again."""
    await DeviceRepository(session, ctx).mark_disconnected(device_ids, at)


async def token_owner(session: AsyncSession, token_digest: bytes) -> TokenOwner | None:
    """The device (and tenant, with both statuses) a token belongs to; a system session."""
    return await DeviceTokenRepository(session).owner(token_digest)


async def device_state(
    session: TenantSession, ctx: TenantContext, device_id: uuid.UUID
) -> DeviceState | None:
    """The device's status and gateway flag (None when it does not exist); a tenant session."""
    found = await DeviceRepository(session, ctx).get(device_id)
    return None if found is None else DeviceState(found.status, found.is_gateway)


def credential_notice(payload: str) -> tuple[str, uuid.UUID] | None:
    """A notice on `CREDENTIALS_CHANNEL`: ("tenant", id) when a tenant's status changed,
    ("device", id) when a device's credentials did; None for a malformed payload."""
    kind = "tenant" if payload.startswith(TENANT_PAYLOAD_PREFIX) else "device"
    try:
        return kind, uuid.UUID(payload.removeprefix(TENANT_PAYLOAD_PREFIX))
    except ValueError:
        return None
