"""Attributes, RPC records, gateway sub-devices and the device-API notifications.

Every statement of the tenant repositories is filtered by the context's tenant (row-level
security applies underneath). `NotifyRepository` sends the cross-process messages of the
live-session hub; sent inside a tenant transaction they are delivered when it commits.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert

from iiot.db.repository import SystemRepository, TenantRepository
from iiot.models.connectivity import DeviceAttribute, DeviceRpc
from iiot.models.devices import Device

# Channel of the hub's messages between processes (JSON payloads, see `hub`).
DEVICE_API_CHANNEL = "iiot_device_api"

_NOTIFY = text("select pg_notify(:channel, :payload)")


@dataclass(frozen=True, slots=True)
class AttributeRow:
    scope: str
    key: str
    value: Any
    updated_at: datetime


class AttributeRepository(TenantRepository[DeviceAttribute]):
    model = DeviceAttribute

    async def read(
        self, device_id: uuid.UUID, scope: str | None = None, keys: list[str] | None = None
    ) -> list[AttributeRow]:
        stmt = select(
            DeviceAttribute.scope,
            DeviceAttribute.key,
            DeviceAttribute.value,
            DeviceAttribute.updated_at,
        ).where(
            DeviceAttribute.tenant_id == self.ctx.tenant_id,
            DeviceAttribute.device_id == device_id,
        )
        if scope is not None:
            stmt = stmt.where(DeviceAttribute.scope == scope)
        if keys is not None:
            stmt = stmt.where(DeviceAttribute.key.in_(keys))
        rows = await self.session.execute(stmt.order_by(DeviceAttribute.key))
        return [AttributeRow(*row) for row in rows]

    async def upsert(
        self, device_id: uuid.UUID, scope: str, values: dict[str, Any], at: datetime
    ) -> None:
        if not values:
            return
        stmt = insert(DeviceAttribute).values(
            [
                {
                    "tenant_id": self.ctx.tenant_id,
                    "device_id": device_id,
                    "scope": scope,
                    "key": key,
                    "value": value,
                    "updated_at": at,
                }
                for key, value in values.items()
            ]
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["tenant_id", "device_id", "scope", "key"],
            set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
        )
        await self.session.execute(stmt)

    async def delete(self, device_id: uuid.UUID, scope: str, keys: list[str]) -> dict[str, Any]:
        """Delete the keys; returns the deleted ones with their last values."""
        result = await self.session.execute(
            delete(DeviceAttribute)
            .where(
                DeviceAttribute.tenant_id == self.ctx.tenant_id,
                DeviceAttribute.device_id == device_id,
                DeviceAttribute.scope == scope,
                DeviceAttribute.key.in_(keys),
            )
            .returning(DeviceAttribute.key, DeviceAttribute.value)
        )
        return {key: value for key, value in result}


class RpcRepository(TenantRepository[DeviceRpc]):
    model = DeviceRpc

    async def get(self, rpc_id: int, device_id: uuid.UUID | None = None) -> DeviceRpc | None:
        stmt = select(DeviceRpc).where(
            DeviceRpc.tenant_id == self.ctx.tenant_id, DeviceRpc.id == rpc_id
        )
        if device_id is not None:
            stmt = stmt.where(DeviceRpc.device_id == device_id)
        return (await self.session.scalars(stmt)).one_or_none()

    async def page(
        self, device_id: uuid.UUID, *, limit: int, offset: int
    ) -> tuple[list[DeviceRpc], int]:
        stmt = select(DeviceRpc).where(
            DeviceRpc.tenant_id == self.ctx.tenant_id, DeviceRpc.device_id == device_id
        )
        total = await self.session.scalar(select(func.count()).select_from(stmt.subquery()))
        rows = await self.session.scalars(
            stmt.order_by(DeviceRpc.id.desc()).limit(limit).offset(offset)
        )
        return list(rows), int(total or 0)

    async def transition(
        self,
        rpc_id: int,
        *,
        from_statuses: tuple[str, ...],
        to_status: str,
        at: datetime,
        device_id: uuid.UUID | None = None,
        response: Any = None,
        with_response: bool = False,
    ) -> DeviceRpc | None:
        """Move the call to `to_status` if it is in one of `from_statuses`; the row, or None
        when it was not (another process, the device or the deadline got there first)."""
        values: dict[str, Any] = {"status": to_status}
        if to_status == "delivered":
            values["delivered_at"] = at
        elif to_status != "queued":
            values["completed_at"] = at
        if with_response:
            values["response"] = response
        stmt = update(DeviceRpc).where(
            DeviceRpc.tenant_id == self.ctx.tenant_id,
            DeviceRpc.id == rpc_id,
            DeviceRpc.status.in_(from_statuses),
        )
        if device_id is not None:
            stmt = stmt.where(DeviceRpc.device_id == device_id)
        if to_status == "queued":
            values["delivered_at"] = None
        result = await self.session.scalars(
            stmt.values(**values).returning(DeviceRpc).execution_options(populate_existing=True)
        )
        return result.one_or_none()

    async def expire_stale(self, before: datetime, at: datetime) -> int:
        """Close two-way calls still waiting after `before` (their caller went away)."""
        result = await self.session.execute(
            update(DeviceRpc)
            .where(
                DeviceRpc.tenant_id == self.ctx.tenant_id,
                DeviceRpc.status.in_(("queued", "delivered")),
                DeviceRpc.oneway.is_(False),
                DeviceRpc.expires_at < before,
            )
            .values(status="timeout", completed_at=at)
        )
        return int(getattr(result, "rowcount", 0) or 0)


class StaleRpcRepository(SystemRepository):
    async def tenants(self, grace_seconds: float) -> list[uuid.UUID]:
        rows = await self.session.scalars(
            text("select * from iiot_tenants_with_stale_rpc(make_interval(secs => :grace))"),
            {"grace": grace_seconds},
        )
        return list(rows)


class SubDeviceRepository(TenantRepository[Device]):
    """A gateway's sub-devices, found by name inside the tenant."""

    model = Device

    async def lock_name(self, name: str) -> None:
        """Serialise creators of one name in this tenant until the transaction ends."""
        await self.session.execute(
            text("select pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"iiot-subdevice:{self.ctx.tenant_id}:{name}"},
        )

    async def by_name(self, name: str) -> list[Device]:
        rows = await self.session.scalars(
            select(Device)
            .where(Device.tenant_id == self.ctx.tenant_id, Device.name == name)
            .order_by(Device.created_at, Device.id)
        )
        return list(rows)


class NotifyRepository(SystemRepository):
    async def send(self, message: dict[str, Any]) -> None:
        """A hub message to every process (delivered when the transaction commits)."""
        await self.session.execute(
            _NOTIFY, {"channel": DEVICE_API_CHANNEL, "payload": orjson.dumps(message).decode()}
        )
