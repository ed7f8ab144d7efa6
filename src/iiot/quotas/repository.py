"""Quota locks and the tenant's limits, read inside a tenant transaction."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Date, DateTime, Select, Uuid, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from iiot.db.repository import SystemRepository, TenantRepository
from iiot.models.quotas import TenantQuotaLock
from iiot.models.telemetry import TenantUsageDaily
from iiot.models.tenancy import Tenant, Tier
from iiot.modules import UsageParameters
from iiot.quotas.limits import LIMIT_FIELDS, EffectiveLimits, effective_limits

# The parameters every usage figure is built with (see `iiot.modules.UsageParameters`).
USAGE_PARAMETERS = UsageParameters(
    tenant_id=bindparam("tenant_id", type_=Uuid),
    now=bindparam("now", type_=DateTime(timezone=True)),
    today=bindparam("today", type_=Date),
)


@dataclass(frozen=True)
class UsageStatement:
    """One SELECT of a tenant's effective limits and the named figures, for any tenant."""

    select: Select[Any]
    figures: tuple[str, ...]


def usage_statement(figures: Mapping[str, ColumnElement[Any]]) -> UsageStatement:
    """The statement reading the tenant's effective limits and `figures` (built with
    `USAGE_PARAMETERS`); built once, run with each request's values."""
    clash = set(figures) & set(LIMIT_FIELDS)
    if clash:
        raise ValueError(f"figures named like limits: {sorted(clash)}")
    own_over_tier = (
        func.coalesce(getattr(Tenant, f), getattr(Tier, f)).label(f) for f in LIMIT_FIELDS
    )
    stmt = (
        select(*own_over_tier, *(figure.label(name) for name, figure in figures.items()))
        .select_from(Tenant)
        .join(Tier, Tier.name == Tenant.tier)
        .where(Tenant.id == USAGE_PARAMETERS.tenant_id)
    )
    return UsageStatement(select=stmt, figures=tuple(figures))


class QuotaRepository(TenantRepository[TenantQuotaLock]):
    model = TenantQuotaLock

    async def lock_seats(self) -> None:
        """Take the tenant's seat lock until the end of the transaction."""
        await self.session.execute(
            insert(TenantQuotaLock)
            .values(tenant_id=self.ctx.tenant_id)
            .on_conflict_do_nothing(index_elements=["tenant_id"])
        )
        await self.session.execute(
            select(TenantQuotaLock.tenant_id)
            .where(TenantQuotaLock.tenant_id == self.ctx.tenant_id)
            .with_for_update()
        )

    async def limits(self) -> EffectiveLimits:
        row = (
            await self.session.execute(
                select(Tenant, Tier)
                .join(Tier, Tier.name == Tenant.tier)
                .where(Tenant.id == self.ctx.tenant_id)
            )
        ).one()
        return effective_limits(row[0], row[1])

    async def usage(
        self, statement: UsageStatement, now: datetime
    ) -> tuple[EffectiveLimits, dict[str, Any]]:
        """The tenant's effective limits and the value of each figure of `statement` at `now`
        (UTC), in one statement; row-level security applies to every figure's subquery."""
        values = {"tenant_id": self.ctx.tenant_id, "now": now, "today": now.date()}
        row = (await self.session.execute(statement.select, values)).one()._mapping
        limits = EffectiveLimits(**{f: row[f] for f in LIMIT_FIELDS})
        return limits, {name: row[name] for name in statement.figures}

    async def points_per_day(self, since: date) -> dict[date, int]:
        """Telemetry points accepted per UTC day from `since` (days without points absent)."""
        rows = await self.session.execute(
            select(TenantUsageDaily.day, TenantUsageDaily.telemetry_points).where(
                TenantUsageDaily.tenant_id == self.ctx.tenant_id, TenantUsageDaily.day >= since
            )
        )
        return {day: int(points) for day, points in rows.all()}


class TenantLimitsRepository(SystemRepository):
    """A tenant's effective limits by id (platform tables, no tenant context needed)."""

    async def limits_of(self, tenant_id: uuid.UUID) -> EffectiveLimits | None:
        row = (
            await self.session.execute(
                select(Tenant, Tier)
                .join(Tier, Tier.name == Tenant.tier)
                .where(Tenant.id == tenant_id)
            )
        ).one_or_none()
        return None if row is None else effective_limits(row[0], row[1])


# Held for its whole life by a process that counts rate limits in memory (no Redis).
MEMORY_LIMITS_LOCK = 0x11077_0001


async def take_memory_limits_lock(conn: AsyncConnection) -> bool:
    """Take the session advisory lock that marks one in-memory limiter on this database."""
    got = await conn.scalar(text("select pg_try_advisory_lock(:k)"), {"k": MEMORY_LIMITS_LOCK})
    await conn.commit()
    return bool(got)


async def release_memory_limits_lock(conn: AsyncConnection) -> None:
    await conn.execute(text("select pg_advisory_unlock(:k)"), {"k": MEMORY_LIMITS_LOCK})
    await conn.commit()
