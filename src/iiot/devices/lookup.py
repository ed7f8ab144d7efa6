"""What other domains may ask about devices, without reaching into the device repository."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from iiot.db.session import TenantSession
from iiot.devices.repository import (
    CREDENTIALS_CHANNEL,
    TENANT_PAYLOAD_PREFIX,
    DeviceRepository,
    DeviceTokenRepository,
    TokenOwner,
)
from iiot.tenancy.context import TenantContext

__all__ = [
    "CREDENTIALS_CHANNEL",
    "DeviceState",
    "credential_notice",
    "device_state",
    "token_owner",
]


@dataclass(frozen=True, slots=True)
class DeviceState:
    status: str
    is_gateway: bool


async def token_owner(session: AsyncSession, token_digest: bytes) -> TokenOwner | None:
    """The device (and tenant, with both statuses) a token belongs to; a system session."""
    return await DeviceTokenRepository(session).owner(token_digest)


async def device_state(
    session: TenantSession, ctx: TenantContext, device_id: uuid.UUID
) -> DeviceState | None:
    """The device's status and gateway flag (None when it does not exist); a tenant session."""
    device = await DeviceRepository(session, ctx).get(device_id)
    return None if device is None else DeviceState(device.status, device.is_gateway)


def credential_notice(payload: str) -> tuple[str, uuid.UUID] | None:
    """A notice on `CREDENTIALS_CHANNEL`: ("tenant", id) when a tenant's status changed,
    ("device", id) when a device's credentials did; None for a malformed payload."""
    kind = "tenant" if payload.startswith(TENANT_PAYLOAD_PREFIX) else "device"
    try:
        return kind, uuid.UUID(payload.removeprefix(TENANT_PAYLOAD_PREFIX))
    except ValueError:
        return None
