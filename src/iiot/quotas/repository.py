"""Quota locks and the tenant's limits, read inside a tenant transaction."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from iiot.db.repository import TenantRepository
from iiot.models.quotas import TenantQuotaLock
from iiot.models.telemetry import TenantUsageDaily
from iiot.models.tenancy import Tenant, Tier
from iiot.quotas.limits import EffectiveLimits, effective_limits


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

    async def points_per_day(self, since: date) -> dict[date, int]:
        """Telemetry points accepted per UTC day from `since` (days without points absent)."""
        rows = await self.session.execute(
            select(TenantUsageDaily.day, TenantUsageDaily.telemetry_points).where(
                TenantUsageDaily.tenant_id == self.ctx.tenant_id, TenantUsageDaily.day >= since
            )
        )
        return {day: int(points) for day, points in rows.all()}
