"""Device attributes: scopes, limits, the views for users and devices, push notifications.

`client` attributes are written by the device, `shared` by users (and pushed to the device's
live sessions), `server` by users only. A change of shared attributes NOTIFYs the hub in the
same transaction, so the push happens only once the change is committed.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from iiot.audit.service import record
from iiot.connectivity.repository import AttributeRepository, NotifyRepository
from iiot.connectivity.schemas import AttributeValue, DeviceAttributes
from iiot.db.session import TenantSession
from iiot.devices import lookup as devices
from iiot.errors import NotFound, ValidationFailed
from iiot.tenancy.context import TenantContext

Scope = Literal["client", "shared", "server"]
SCOPES: tuple[Scope, ...] = ("client", "shared", "server")

MAX_KEY_LENGTH = 255
MAX_KEYS_PER_REQUEST = 1000
MAX_VALUE_BYTES = 16_384
# Keys named in one NOTIFY message at most (its payload is limited); more mean "read all".
_MAX_NOTIFIED_KEYS_BYTES = 6000


def validate(values: dict[str, Any]) -> dict[str, Any]:
    """Refuse keys or values the store does not take (nothing is stored then)."""
    if len(values) > MAX_KEYS_PER_REQUEST:
        raise ValidationFailed(f"at most {MAX_KEYS_PER_REQUEST} attributes per request")
    errors: list[dict[str, str]] = []
    for key, value in values.items():
        if not key or len(key) > MAX_KEY_LENGTH or "\x00" in key:
            errors.append({"field": key[:40], "reason": "key must be 1-255 characters, no NUL"})
            continue
        try:
            size = len(orjson.dumps(value))
        except (TypeError, orjson.JSONEncodeError):
            errors.append({"field": key[:100], "reason": "value is not JSON"})
            continue
        if size > MAX_VALUE_BYTES:
            errors.append(
                {"field": key[:100], "reason": f"value exceeds {MAX_VALUE_BYTES} bytes as JSON"}
            )
        elif "\\u0000" in orjson.dumps(value).decode():
            errors.append({"field": key[:100], "reason": "NUL characters are not allowed"})
    if errors:
        raise ValidationFailed(
            f"{len(errors)} invalid attribute(s); nothing was stored", errors=errors
        )
    return values


def validate_keys(keys: list[str]) -> list[str]:
    if not keys:
        raise ValidationFailed("name at least one key (keys=a,b)")
    if len(keys) > MAX_KEYS_PER_REQUEST:
        raise ValidationFailed(f"at most {MAX_KEYS_PER_REQUEST} keys per request")
    if any(len(k) > MAX_KEY_LENGTH or "\x00" in k for k in keys):
        raise ValidationFailed("keys are 1-255 characters, no NUL")
    return keys


async def _require_device(session: TenantSession, ctx: TenantContext, device_id: uuid.UUID) -> None:
    if not await devices.exists(session, ctx, device_id):
        raise NotFound("device not found")


async def _notify_shared(
    session: TenantSession,
    ctx: TenantContext,
    device_id: uuid.UUID,
    changed: list[str],
    deleted: list[str],
) -> None:
    keys: list[str] | None = changed
    if len(orjson.dumps(changed)) + len(orjson.dumps(deleted)) > _MAX_NOTIFIED_KEYS_BYTES:
        keys = None  # too long for one notification: the receiver reads every shared key
        deleted = deleted[:50]
    await NotifyRepository(session).send(
        {"k": "attr", "t": str(ctx.tenant_id), "d": str(device_id), "u": keys, "x": deleted}
    )


async def save(
    session: TenantSession,
    ctx: TenantContext,
    device_id: uuid.UUID,
    scope: Scope,
    values: dict[str, Any],
    *,
    audit: bool = False,
) -> None:
    """Create or replace attributes of one scope."""
    await _require_device(session, ctx, device_id)
    validate(values)
    if not values:
        return
    repo = AttributeRepository(session, ctx)
    before: dict[str, Any] = {}
    if audit:
        before = {r.key: r.value for r in await repo.read(device_id, scope, list(values))}
    await repo.upsert(device_id, scope, values, datetime.now(UTC))
    if audit:
        changed = {k: v for k, v in values.items() if k not in before or before[k] != v}
        await record(
            session,
            ctx,
            "device.attributes.update",
            target_type="device",
            target_id=device_id,
            before={"scope": scope, "values": {k: before[k] for k in changed if k in before}},
            after={"scope": scope, "values": changed},
        )
    if scope == "shared":
        await _notify_shared(session, ctx, device_id, list(values), [])


async def delete(
    session: TenantSession, ctx: TenantContext, device_id: uuid.UUID, scope: Scope, keys: list[str]
) -> list[str]:
    """Delete keys of one scope; returns those that existed."""
    await _require_device(session, ctx, device_id)
    validate_keys(keys)
    removed = await AttributeRepository(session, ctx).delete(device_id, scope, keys)
    if removed:
        await record(
            session,
            ctx,
            "device.attributes.delete",
            target_type="device",
            target_id=device_id,
            before={"scope": scope, "values": removed},
        )
        if scope == "shared":
            await _notify_shared(session, ctx, device_id, [], sorted(removed))
    return sorted(removed)


async def user_view(
    session: TenantSession, ctx: TenantContext, device_id: uuid.UUID
) -> DeviceAttributes:
    """Every attribute of the device, by scope, with its update time."""
    await _require_device(session, ctx, device_id)
    view: dict[str, dict[str, AttributeValue]] = {scope: {} for scope in SCOPES}
    for row in await AttributeRepository(session, ctx).read(device_id):
        view[row.scope][row.key] = AttributeValue(value=row.value, updated_at=row.updated_at)
    return DeviceAttributes(**view)


async def device_view(
    session: TenantSession,
    ctx: TenantContext,
    device_id: uuid.UUID,
    client_keys: list[str] | None,
    shared_keys: list[str] | None,
) -> dict[str, dict[str, Any]]:
    """ThingsBoard's attribute response: `{"client": {k: v}, "shared": {k: v}}`, scopes with
    nothing to show left out (None = every key of the scope, [] = none)."""
    repo = AttributeRepository(session, ctx)
    out: dict[str, dict[str, Any]] = {}
    for scope, keys in (("client", client_keys), ("shared", shared_keys)):
        if keys is not None and not keys:
            continue
        rows = await repo.read(device_id, scope, keys)
        if rows:
            out[scope] = {row.key: row.value for row in rows}
    return out
