"""Devices and device credentials: every statement filtered by the context's tenant.

`token_holder` is the one cross-tenant look-up: it resolves a device token's digest through the
SECURITY DEFINER function `iiot_device_by_token`, which returns only the ids and statuses the
resolver needs, and reads the device's name and gateway flag with the owner's tenant set
(row-level security in force), in one statement that is its own transaction: what a device
session needs to open, and what a live session is checked against.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, LiteralString

from sqlalchemy import (
    ColumnElement,
    LargeBinary,
    ScalarSelect,
    String,
    Uuid,
    bindparam,
    case,
    column,
    delete,
    func,
    null,
    select,
    text,
    update,
)
from sqlalchemy.orm import InstrumentedAttribute

from iiot.db.driver import DriverStatement
from iiot.db.repository import SystemRepository, TenantRepository
from iiot.db.session import Database, tenant_scope
from iiot.models.devices import Device, DeviceCredential

# Channel on which credential changes are announced; payload is the device id (its
# credentials, status, gateway flag or name changed, or it was deleted), or `tenant:<id>` when
# a tenant's status changes (suspended, activated, deleted, restored).
CREDENTIALS_CHANNEL = "iiot_device_credentials"
TENANT_PAYLOAD_PREFIX = "tenant:"

_NOTIFY = text("select pg_notify(:channel, :payload)")


@dataclass(frozen=True, slots=True)
class DeviceFilters:
    status: str | None = None
    area: str | None = None
    type: str | None = None
    # Part of the name or location, case-insensitive, taken literally (no wildcards).
    search: str | None = None


class DeviceRepository(TenantRepository[Device]):
    model = Device

    async def get(self, device_id: uuid.UUID, *, for_update: bool = False) -> Device | None:
        stmt = select(Device).where(Device.tenant_id == self.ctx.tenant_id, Device.id == device_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.scalars(stmt)).one_or_none()

    async def exists(self, device_id: uuid.UUID) -> bool:
        stmt = select(Device.id).where(
            Device.tenant_id == self.ctx.tenant_id, Device.id == device_id
        )
        return (await self.session.scalar(stmt)) is not None

    @staticmethod
    def count_figure(tenant_id: ColumnElement[uuid.UUID]) -> ScalarSelect[int]:
        """The tenant's device count as a scalar subquery (for the usage statement)."""
        return (
            select(func.count())
            .select_from(Device)
            .where(Device.tenant_id == tenant_id)
            .scalar_subquery()
        )

    async def count(self) -> int:
        stmt = (
            select(func.count()).select_from(Device).where(Device.tenant_id == self.ctx.tenant_id)
        )
        return int(await self.session.scalar(stmt) or 0)

    async def list(
        self,
        filters: DeviceFilters,
        *,
        online_since: datetime,
        seen_recently: list[uuid.UUID],
        limit: int,
        offset: int,
    ) -> tuple[list[Device], int]:
        """A page of devices; `seen_recently` are devices heard from but not yet flushed."""
        stmt = select(Device).where(Device.tenant_id == self.ctx.tenant_id)
        if filters.area is not None:
            stmt = stmt.where(Device.area == filters.area)
        if filters.type is not None:
            stmt = stmt.where(Device.type == filters.type)
        if filters.search:
            literal = filters.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern = f"%{literal}%"
            stmt = stmt.where(
                Device.name.ilike(pattern, escape="\\")
                | Device.location.ilike(pattern, escape="\\")
            )
        # Online/offline is derived from last_seen_at, so the filter reads it the same way.
        recent = Device.last_seen_at >= online_since
        if seen_recently:
            recent = recent | Device.id.in_(seen_recently)
        # A device whose session closed is offline until it is heard from again.
        recent = recent & (
            Device.disconnected_at.is_(None) | (Device.disconnected_at < Device.last_seen_at)
        )
        if filters.status == "disabled":
            stmt = stmt.where(Device.status == "disabled")
        elif filters.status == "online":
            stmt = stmt.where(Device.status != "disabled", recent)
        elif filters.status == "offline":
            stmt = stmt.where(Device.status != "disabled", ~func.coalesce(recent, False))
        total = await self.session.scalar(select(func.count()).select_from(stmt.subquery()))
        rows = await self.session.scalars(
            stmt.order_by(Device.created_at, Device.id).limit(limit).offset(offset)
        )
        return list(rows), int(total or 0)

    async def delete(self, device: Device) -> None:
        await self.session.execute(
            delete(Device).where(Device.tenant_id == self.ctx.tenant_id, Device.id == device.id)
        )

    async def touch_last_seen(self, seen: dict[uuid.UUID, datetime]) -> int:
        """Move last_seen_at forward (never back) for the given devices; returns rows updated."""
        if not seen:
            return 0
        ids = list(seen)
        result = await self.session.execute(
            text(
                """
                update devices d
                set last_seen_at = greatest(d.last_seen_at, s.seen_at),
                    status = case when d.status = 'disabled' then d.status else 'online' end
                from unnest(cast(:ids as uuid[]), cast(:seen as timestamptz[])) as s(id, seen_at)
                where d.tenant_id = :tenant_id and d.id = s.id
                """
            ),
            {"ids": ids, "seen": [seen[i] for i in ids], "tenant_id": self.ctx.tenant_id},
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def notify_credentials_changed(self, device_id: uuid.UUID) -> None:
        """Tell every process to forget cached tokens of this device (delivered at commit)."""
        await self.session.execute(
            _NOTIFY, {"channel": CREDENTIALS_CHANNEL, "payload": str(device_id)}
        )


class CredentialRepository(TenantRepository[DeviceCredential]):
    model = DeviceCredential

    async def revoke_all(self, device_id: uuid.UUID, at: datetime) -> list[uuid.UUID]:
        result = await self.session.execute(
            update(DeviceCredential)
            .where(
                DeviceCredential.tenant_id == self.ctx.tenant_id,
                DeviceCredential.device_id == device_id,
                DeviceCredential.revoked_at.is_(None),
            )
            .values(revoked_at=at)
            .returning(DeviceCredential.id)
        )
        return list(result.scalars())

    async def active_for(self, device_id: uuid.UUID) -> DeviceCredential | None:
        stmt = (
            select(DeviceCredential)
            .where(
                DeviceCredential.tenant_id == self.ctx.tenant_id,
                DeviceCredential.device_id == device_id,
                DeviceCredential.revoked_at.is_(None),
            )
            .order_by(DeviceCredential.created_at.desc())
            .limit(1)
        )
        return (await self.session.scalars(stmt)).first()


@dataclass(frozen=True, slots=True)
class TokenOwner:
    tenant_id: uuid.UUID
    device_id: uuid.UUID
    device_status: str
    tenant_status: str
    # The device's name and gateway flag, read with the tenant's row-level security in force;
    # None when that read does not see the device row.
    device_name: str | None
    is_gateway: bool | None


class DeviceTokenRepository(SystemRepository):
    async def announce_tenant_change(self, tenant_id: uuid.UUID) -> None:
        """Tell every process to forget cached tokens of this tenant (delivered at commit)."""
        await self.session.execute(
            _NOTIFY,
            {"channel": CREDENTIALS_CHANNEL, "payload": f"{TENANT_PAYLOAD_PREFIX}{tenant_id}"},
        )


def _token_holder_statement() -> DriverStatement:
    """`iiot_device_by_token(digest)` and, read with the owner's tenant set, the device's name
    and gateway flag. The function's row comes from the FROM clause, read before any tenant is
    set (it is SECURITY DEFINER); each device column is a CASE whose condition sets the tenant
    (`tenant_scope`), so the device row is read under row-level security."""
    owner = (
        text(
            "select tenant_id, device_id, device_status, tenant_status"
            " from iiot_device_by_token(:digest)"
        )
        .bindparams(bindparam("digest", type_=LargeBinary))
        .columns(
            column("tenant_id", Uuid),
            column("device_id", Uuid),
            column("device_status", String),
            column("tenant_status", String),
        )
        .subquery("owner")
    )
    o = owner.c
    in_scope = tenant_scope(o.tenant_id).is_not(None)

    def of_device(value: InstrumentedAttribute[Any]) -> ColumnElement[Any]:
        read = (
            select(value)
            .where(Device.tenant_id == o.tenant_id, Device.id == o.device_id)
            .scalar_subquery()
        )
        return case((in_scope, read), else_=null())

    stmt = select(
        o.tenant_id,
        o.device_id,
        o.device_status,
        o.tenant_status,
        of_device(Device.name).label("device_name"),
        of_device(Device.is_gateway).label("is_gateway"),
    ).select_from(owner)
    return DriverStatement.compile(stmt, frozenset({"digest"}))


TOKEN_HOLDER_STATEMENT = _token_holder_statement()


async def token_holder(db: Database, token_digest: bytes) -> TokenOwner | None:
    """The device (and tenant, with both statuses) a token belongs to, with the device's name
    and gateway flag: one statement, its own transaction (`Database.one_row`). None for an
    unknown or revoked token."""
    row = await db.one_row(TOKEN_HOLDER_STATEMENT, {"digest": token_digest})
    return None if row is None else TokenOwner(*row)


# What `record_sessions` sends: each device's last session event, opened then closed, so a
# device named in both is written closed, as the later statement leaves it. `last_seen_at`
# only moves forward.
_SESSIONS_OPENED = (
    "update devices set disconnected_at = null,"
    " last_seen_at = greatest(coalesce(last_seen_at, %(at)s), %(at)s)"
    " where tenant_id = %(tenant_id)s and id = any(%(ids)s)"
)
_SESSIONS_CLOSED = (
    "update devices set disconnected_at = %(at)s,"
    " last_seen_at = greatest(coalesce(last_seen_at, %(at)s), %(at)s)"
    " where tenant_id = %(tenant_id)s and id = any(%(ids)s)"
)


async def record_sessions(
    db: Database,
    tenant_id: uuid.UUID,
    opened: Collection[uuid.UUID],
    closed: Collection[uuid.UUID],
    at: datetime,
) -> None:
    """Live sessions of devices of one tenant opened (heard from at `at`, no longer
    disconnected) or closed (their last one: offline from `at`). One transaction scoped to the
    tenant, sent in one round trip (`Database.tenant_statements`); committed on return."""
    statements: list[tuple[LiteralString, Mapping[str, Any]]] = []
    for sql, ids in ((_SESSIONS_OPENED, opened), (_SESSIONS_CLOSED, closed)):
        if ids:
            statements.append((sql, {"at": at, "tenant_id": tenant_id, "ids": list(ids)}))
    if statements:
        await db.tenant_statements(tenant_id, statements)


def device_fields(device: Device) -> dict[str, Any]:
    """The audited fields of a device."""
    return {
        "name": device.name,
        "type": device.type,
        "location": device.location,
        "area": device.area,
        "protocol": device.protocol,
        "config": device.config,
        "metadata": device.metadata_,
        "status": device.status,
        "is_gateway": device.is_gateway,
    }
