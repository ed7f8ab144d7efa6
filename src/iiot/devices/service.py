"""Device rules: seat quota on create, one live token per device, audit of every change."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from iiot.audit.service import changes, record
from iiot.db.session import TenantSession
from iiot.devices.presence import OFFLINE_AFTER, Presence, effective_status
from iiot.devices.repository import (
    CredentialRepository,
    DeviceFilters,
    DeviceRepository,
    DeviceTokenRepository,
    device_fields,
)
from iiot.devices.schemas import (
    CredentialOut,
    DeviceCreated,
    DeviceIn,
    DeviceList,
    DeviceOut,
    DevicePatch,
)
from iiot.errors import NotFound
from iiot.identity.credentials import DEVICE_TOKEN_PREFIX
from iiot.identity.tokens import digest, new_secret
from iiot.models.devices import Device, DeviceCredential
from iiot.modules import UsageFigures, UsageParameters
from iiot.outputs import from_row
from iiot.quotas.seats import take_seat
from iiot.tenancy.context import TenantContext


def _stored_status(enabled: bool) -> str:
    return "offline" if enabled else "disabled"


def device_out(device: Device, presence: Presence, now: datetime) -> DeviceOut:
    last_seen = presence.last_seen(device.id, device.last_seen_at)
    online = effective_status("offline", last_seen, now, device.disconnected_at) == "online"
    return from_row(
        DeviceOut,
        device,
        metadata=device.metadata_,
        enabled=device.status != "disabled",
        connectivity="online" if online else "offline",
        status=effective_status(device.status, last_seen, now, device.disconnected_at),
        last_seen=last_seen,
    )


async def _issue_token(
    session: TenantSession, ctx: TenantContext, device_id: uuid.UUID
) -> tuple[DeviceCredential, str]:
    token = new_secret(DEVICE_TOKEN_PREFIX)
    credential = await CredentialRepository(session, ctx).add(
        DeviceCredential(device_id=device_id, token_hash=digest(token))
    )
    return credential, token


async def _get(session: TenantSession, ctx: TenantContext, device_id: uuid.UUID) -> Device:
    device = await DeviceRepository(session, ctx).get(device_id, for_update=True)
    if device is None:
        raise NotFound("device not found")
    return device


async def list_devices(
    session: TenantSession,
    ctx: TenantContext,
    filters: DeviceFilters,
    *,
    limit: int,
    offset: int,
    presence: Presence,
) -> DeviceList:
    now = datetime.now(UTC)
    since = now - OFFLINE_AFTER
    devices, total = await DeviceRepository(session, ctx).list(
        filters,
        online_since=since,
        seen_recently=presence.seen_since(ctx.tenant_id, since) if filters.status else [],
        limit=limit,
        offset=offset,
    )
    return DeviceList(
        devices=[device_out(d, presence, now) for d in devices],
        total=total,
        limit=limit,
        offset=offset,
    )


async def create_device(
    session: TenantSession, ctx: TenantContext, body: DeviceIn, *, presence: Presence
) -> DeviceCreated:
    repo = DeviceRepository(session, ctx)
    await take_seat(session, ctx, "devices", repo.count)
    device = await repo.add(
        Device(
            id=uuid.uuid4(),
            name=body.name,
            type=body.type,
            location=body.location,
            area=body.area,
            protocol=body.protocol,
            config=body.config,
            metadata_=body.metadata,
            status=_stored_status(body.written_enabled() is not False),
            is_gateway=body.is_gateway,
        )
    )
    credential, token = await _issue_token(session, ctx, device.id)
    await session.refresh(device)
    await record(
        session,
        ctx,
        "device.create",
        target_type="device",
        target_id=device.id,
        after=device_fields(device),
    )
    await record(
        session,
        ctx,
        "device.credentials.create",
        target_type="device",
        target_id=device.id,
        after={"credential_id": credential.id},
    )
    out = device_out(device, presence, datetime.now(UTC))
    return DeviceCreated(**out.model_dump(), token=token)


async def get_device(
    session: TenantSession, ctx: TenantContext, device_id: uuid.UUID, *, presence: Presence
) -> DeviceOut:
    """One device (its detail with the newest telemetry values: iiot.telemetry.device_detail)."""
    device = await DeviceRepository(session, ctx).get(device_id)
    if device is None:
        raise NotFound("device not found")
    return device_out(device, presence, datetime.now(UTC))


async def update_device(
    session: TenantSession,
    ctx: TenantContext,
    device_id: uuid.UUID,
    body: DeviceIn | DevicePatch,
    *,
    presence: Presence,
) -> DeviceOut:
    """Replace (PUT, a full `DeviceIn`) or change some fields (PATCH) of a device."""
    device = await _get(session, ctx, device_id)
    before = device_fields(device)
    given: dict[str, Any] = (
        body.model_dump() if isinstance(body, DeviceIn) else body.model_dump(exclude_unset=True)
    )
    given.pop("enabled", None)
    enabled = body.written_enabled()
    given["status"] = None if enabled is None else _stored_status(enabled)
    for name, value in given.items():
        if name == "metadata":
            device.metadata_ = value if value is not None else {}
        elif name == "config":
            device.config = value if value is not None else {}
        elif name == "status":
            if value is not None:
                device.status = value
        elif name == "name":
            if value is not None:
                device.name = value
        elif name == "is_gateway":
            if value is not None:
                device.is_gateway = value
        else:
            setattr(device, name, value)
    device.updated_at = datetime.now(UTC)
    await session.flush()
    after = device_fields(device)
    old, new = changes(before, after)
    if old or new:
        await record(
            session,
            ctx,
            "device.update",
            target_type="device",
            target_id=device.id,
            before=old,
            after=new,
        )
    if any(before[field] != after[field] for field in ("status", "is_gateway", "name")):
        # Live sessions re-check what they may do (a disabled device, a former gateway); the
        # device-token caches drop the device's entries, which hold its name and gateway flag,
        # and gateways the sub-device they knew by its former name.
        await DeviceRepository(session, ctx).notify_credentials_changed(device.id)
    return device_out(device, presence, datetime.now(UTC))


async def delete_device(
    session: TenantSession, ctx: TenantContext, device_id: uuid.UUID, *, presence: Presence
) -> None:
    """Delete a device; its credentials and telemetry go with it (foreign-key cascade)."""
    repo = DeviceRepository(session, ctx)
    device = await _get(session, ctx, device_id)
    before = device_fields(device)
    await repo.delete(device)
    await repo.notify_credentials_changed(device.id)
    await record(
        session, ctx, "device.delete", target_type="device", target_id=device.id, before=before
    )
    presence.forget(device.id)


async def rotate_credentials(
    session: TenantSession, ctx: TenantContext, device_id: uuid.UUID
) -> CredentialOut:
    """Issue a new token for the device and revoke every earlier one."""
    device = await _get(session, ctx, device_id)
    revoked = await CredentialRepository(session, ctx).revoke_all(device.id, datetime.now(UTC))
    credential, token = await _issue_token(session, ctx, device.id)
    await DeviceRepository(session, ctx).notify_credentials_changed(device.id)
    await record(
        session,
        ctx,
        "device.credentials.rotate",
        target_type="device",
        target_id=device.id,
        before={"revoked_credential_ids": [str(r) for r in revoked]},
        after={"credential_id": credential.id},
    )
    await session.refresh(credential)
    return CredentialOut(
        id=credential.id,
        device_id=device.id,
        token=token,
        created_at=credential.created_at,
        revoked=len(revoked),
    )


async def announce_tenant_change(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """Tell every process's device-token cache and live device sessions that the tenant's
    status changed (suspended, activated, deleted, restored); delivered at commit."""
    await DeviceTokenRepository(session).announce_tenant_change(tenant_id)


def device_usage(p: UsageParameters) -> UsageFigures:
    return {"device_count": DeviceRepository.count_figure(p.tenant_id)}
