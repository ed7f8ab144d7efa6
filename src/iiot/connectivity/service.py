"""The device API every transport maps onto (MQTT topics, the ThingsBoard HTTP device API).

Each function opens its own tenant transaction(s) and returns only after they committed.
Refusals are `IIoTError`s: `Unauthorized` (bad token), `TenantSuspended`, `Forbidden`,
`QuotaExceeded`, `ValidationFailed`, `NotFound`, `Conflict`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from iiot.audit.service import record
from iiot.connectivity import attributes_service, rpc_service
from iiot.connectivity.hub import hub
from iiot.connectivity.identity import DeviceIdentity
from iiot.connectivity.repository import SubDeviceRepository
from iiot.devices import lookup as devices
from iiot.devices.access import MAX_TOKEN_LENGTH, device_context
from iiot.devices.presence import presence
from iiot.devices.token_cache import token_cache
from iiot.errors import (
    Conflict,
    Forbidden,
    NotFound,
    TenantSuspended,
    Unauthorized,
    ValidationFailed,
)
from iiot.identity.tokens import digest
from iiot.models.devices import Device
from iiot.quotas.seats import take_seat
from iiot.telemetry import ingest as telemetry_ingest
from iiot.telemetry.schemas import PointIn
from iiot.tenancy.context import TenantContext

if TYPE_CHECKING:
    from iiot.runtime import Runtime

__all__ = [
    "DeviceIdentity",
    "IngestOutcome",
    "authenticate",
    "client_rpc",
    "device_connected",
    "device_disconnected",
    "gateway_device",
    "ingest",
    "read_attributes",
    "rpc_reply",
    "save_client_attributes",
    "sessions_changed",
]

DEFAULT_SUBDEVICE_TYPE = "default"
MAX_DEVICE_NAME = 200

# What `getSessionLimits` reports (ThingsBoard's shape). iiot has no per-device message rate
# limit, so the rate limits are generous ceilings the client SDKs accept.
SESSION_LIMITS: dict[str, Any] = {
    "maxPayloadSize": 65536,
    "maxInflightMessages": 100,
    "rateLimits": {
        "messages": "10000:1,600000:60",
        "telemetryMessages": "10000:1,600000:60",
        "telemetryDataPoints": "100000:1,6000000:60",
    },
}


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    accepted: int
    duplicates: int


def _ctx(device: DeviceIdentity) -> TenantContext:
    return device_context(device.tenant_id, device.device_id)


async def authenticate(rt: Runtime, token: str) -> DeviceIdentity:
    """The device a token belongs to, through the process's token cache: a token it holds
    costs no database round trip, any other one statement (the token's owner, both statuses,
    the device's name and gateway flag; see `iiot.devices.token_cache`)."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise Unauthorized("invalid device token")
    token_digest = digest(token)
    owner = await token_cache(rt).owner(token_digest)
    if owner is None:
        raise Unauthorized("invalid or revoked device token")
    if owner.tenant_status == "suspended":
        raise TenantSuspended("this tenant is suspended")
    if owner.device_status == "disabled":
        raise Forbidden("this device is disabled")
    if owner.device_name is None or owner.is_gateway is None:
        # The device row was not visible in its tenant's scope.
        raise Unauthorized("invalid or revoked device token")
    return DeviceIdentity(
        device_id=owner.device_id,
        tenant_id=owner.tenant_id,
        name=owner.device_name,
        is_gateway=owner.is_gateway,
        token_digest=token_digest,
    )


async def ingest(rt: Runtime, device: DeviceIdentity, points: list[PointIn]) -> IngestOutcome:
    """Store the device's points through the telemetry ingest service (same validation,
    quota, group commit and rules event as `POST /api/v1/telemetry`)."""
    if not points:
        return IngestOutcome(accepted=0, duplicates=0)
    ctx = _ctx(device)
    prepared = await telemetry_ingest.prepare_points(
        rt, ctx, device.device_id, points, device.token_digest
    )
    await telemetry_ingest.admit(rt, ctx, prepared)
    accepted = await telemetry_ingest.write(rt, ctx, prepared)
    await telemetry_ingest.after_commit(rt, ctx, prepared, accepted)
    return IngestOutcome(accepted=accepted.points, duplicates=accepted.duplicates)


async def save_client_attributes(
    rt: Runtime, device: DeviceIdentity, values: dict[str, Any]
) -> None:
    """Store attributes the device reports about itself (scope `client`)."""
    if not values:
        return
    ctx = _ctx(device)
    async with rt.db.tenant(ctx) as session:
        await attributes_service.save(session, ctx, device.device_id, "client", values)


async def read_attributes(
    rt: Runtime,
    device: DeviceIdentity,
    client_keys: list[str] | None,
    shared_keys: list[str] | None,
) -> dict[str, dict[str, Any]]:
    """`{"client": {…}, "shared": {…}}` for the keys asked (None = every key of the scope,
    [] = none); a scope with nothing to show is left out, as ThingsBoard does."""
    ctx = _ctx(device)
    async with rt.db.tenant(ctx) as session:
        return await attributes_service.device_view(
            session, ctx, device.device_id, client_keys, shared_keys
        )


def _subdevice_name(name: str) -> str:
    stripped = name.strip() if isinstance(name, str) else ""
    if not stripped or len(stripped) > MAX_DEVICE_NAME or "\x00" in stripped:
        raise ValidationFailed(f"a device name is 1-{MAX_DEVICE_NAME} characters")
    return stripped


async def gateway_device(
    rt: Runtime, gateway: DeviceIdentity, name: str, device_type: str | None = None
) -> DeviceIdentity:
    """The sub-device `name` of the gateway's tenant, created on first use (counted toward
    `max_devices`; `QuotaExceeded` past it) and linked to the gateway.

    Names are per tenant: an existing device of that name in the gateway's tenant is used if
    it is this gateway's or not yet linked to any gateway (it is then linked); a device of
    another gateway, or a gateway, is refused with `Conflict`.
    """
    if not gateway.is_gateway:
        raise Forbidden("this device is not a gateway")
    name = _subdevice_name(name)
    cache = hub(rt).subdevices
    cached = cache.get((gateway.device_id, name))
    if cached is not None:
        return cached
    ctx = _ctx(gateway)
    async with rt.db.tenant(ctx) as session:
        repo = SubDeviceRepository(session, ctx)
        await repo.lock_name(name)
        device = await _existing_subdevice(session, ctx, gateway, await repo.by_name(name))
        if device is None:
            device = await _create_subdevice(session, ctx, gateway, name, device_type)
    if device.status == "disabled":
        raise Forbidden(f"device {name!r} is disabled")
    identity = DeviceIdentity(
        device_id=device.id,
        tenant_id=device.tenant_id,
        name=device.name,
        is_gateway=False,
        token_digest=gateway.token_digest,
        gateway_id=gateway.device_id,
    )
    if hub(rt).listening:  # kept only while deletions and revocations are heard
        if len(cache) > 100_000:
            cache.clear()
        cache[(gateway.device_id, name)] = identity
    return identity


async def _existing_subdevice(
    session: Any, ctx: TenantContext, gateway: DeviceIdentity, found: list[Device]
) -> Device | None:
    if not found:
        return None
    mine = [d for d in found if d.gateway_id == gateway.device_id]
    if mine:
        return mine[0]
    free = [d for d in found if d.gateway_id is None and not d.is_gateway]
    if not free:
        raise Conflict(f"device {found[0].name!r} belongs to another gateway or is a gateway")
    device = free[0]
    before = devices.device_fields(device)
    device.gateway_id = gateway.device_id
    device.updated_at = datetime.now(UTC)
    await session.flush()
    await record(
        session,
        ctx,
        "device.update",
        target_type="device",
        target_id=device.id,
        before={"gateway_id": None, **{k: before[k] for k in ("name",)}},
        after={"gateway_id": gateway.device_id, "name": device.name},
    )
    return device


async def _create_subdevice(
    session: Any, ctx: TenantContext, gateway: DeviceIdentity, name: str, device_type: str | None
) -> Device:
    await take_seat(session, ctx, "devices", lambda: devices.count(session, ctx))
    kind = (device_type or "").strip()[:64] or DEFAULT_SUBDEVICE_TYPE
    device = await devices.add(
        session,
        ctx,
        Device(
            id=uuid.uuid4(),
            name=name,
            type=kind,
            protocol="gateway",
            status="offline",
            gateway_id=gateway.device_id,
            is_gateway=False,
        ),
    )
    await session.refresh(device)
    await record(
        session,
        ctx,
        "device.create",
        target_type="device",
        target_id=device.id,
        after={**devices.device_fields(device), "gateway_id": gateway.device_id},
    )
    return device


async def rpc_reply(rt: Runtime, device: DeviceIdentity, request_id: int, payload: Any) -> None:
    """The device's answer to server-side call `request_id` (wakes the waiting caller in
    whichever process it waits). `NotFound` for no such call of this device, `Conflict` when
    it already ended (answered, timed out)."""
    ctx = _ctx(device)
    async with rt.db.tenant(ctx) as session:
        await rpc_service.complete(session, ctx, device.device_id, request_id, payload)
    hub(rt).reply_arrived(device.tenant_id, request_id, payload)


async def client_rpc(rt: Runtime, device: DeviceIdentity, method: str, params: Any) -> Any:
    """A call the device makes to the server: `getSessionLimits` (ThingsBoard's shape) and
    `getCurrentTime`; any other method is `NotFound`."""
    if method == "getSessionLimits":
        limits = dict(SESSION_LIMITS)
        if device.is_gateway:
            limits["gatewayRateLimits"] = dict(SESSION_LIMITS["rateLimits"])
        return limits
    if method == "getCurrentTime":
        return {"currentTime": int(time.time() * 1000)}
    raise NotFound(f"unknown RPC method {method[:100]!r}")


async def device_connected(rt: Runtime, device: DeviceIdentity) -> None:
    """A live session of the device opened: online from now (last_seen is now). While the
    session lasts the hub keeps the device heard from."""
    await sessions_changed(rt, [(device, True)])


async def device_disconnected(rt: Runtime, device: DeviceIdentity) -> None:
    """A live session of the device closed: offline from now (last_seen is now), unless
    another session of it is still attached in this process. Detach the session first."""
    await sessions_changed(rt, [(device, False)])


async def sessions_changed(rt: Runtime, changes: Sequence[tuple[DeviceIdentity, bool]]) -> None:
    """Live sessions of devices of one tenant that opened (True) or closed (False), written in
    one transaction: what `device_connected` and `device_disconnected` do for each, so that a
    storm of (re)connections costs one transaction, not one per device. The transaction is
    scoped to the devices' tenant (every device in `changes` was verified; the statements are
    filtered by their tenant) and sent in one round trip."""
    if not changes:
        return
    first = changes[0][0]
    assert all(d.tenant_id == first.tenant_id for d, _ in changes), "one tenant at a time"
    now = datetime.now(UTC)
    opened = [d.device_id for d, up in changes if up]
    closed = [d.device_id for d, up in changes if not up and not hub(rt).sessions(d.device_id)]
    for device_id in closed:
        presence(rt).seen(first.tenant_id, device_id, now)
    await devices.record_sessions(rt.db, first.tenant_id, opened, closed, now)
    for device_id in opened:
        presence(rt).seen(first.tenant_id, device_id, now)
