"""What other domains may read and do with a tenant's devices, without reaching into the device
repository: the few operations the device sessions (connectivity), their hub and the analytics
need, and nothing else.

Each takes the tenant's session and context (the token look-up a system session; the session
bookkeeping the database and the tenant, whose transaction it opens); every statement is
filtered by its tenant.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from iiot.db.session import Database, TenantSession
from iiot.devices import repository
from iiot.devices.repository import (
    CREDENTIALS_CHANNEL,
    TENANT_PAYLOAD_PREFIX,
    DeviceRepository,
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
    "record_sessions",
    "token_holder",
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


async def record_sessions(
    db: Database,
    tenant_id: uuid.UUID,
    opened: Collection[uuid.UUID],
    closed: Collection[uuid.UUID],
    at: datetime,
) -> None:
    """Live sessions of these devices of one tenant opened (heard from now, no longer
    disconnected) or closed (their last ones: offline until heard from again), written in one
    transaction scoped to the tenant, in one round trip; committed on return."""
    await repository.record_sessions(db, tenant_id, opened, closed, at)


async def token_holder(db: Database, token_digest: bytes) -> TokenOwner | None:
    """The device (and tenant, with both statuses, and the device's gateway flag) a token
    belongs to, in one statement of its own; None for an unknown or revoked token."""
    return await repository.token_holder(db, token_digest)


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
