"""Tenants and tiers (platform tables, system session)."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from iiot.db.repository import SystemRepository
from iiot.models.tenancy import Tenant, Tier


class TenantRepository(SystemRepository):
    async def get(self, tenant_id: uuid.UUID) -> Tenant | None:
        tenant = await self.session.get(Tenant, tenant_id)
        return tenant if tenant is not None and tenant.deleted_at is None else None

    async def get_by_slug(self, slug: str) -> Tenant | None:
        stmt = select(Tenant).where(Tenant.slug == slug, Tenant.deleted_at.is_(None))
        return (await self.session.scalars(stmt)).one_or_none()

    async def add(self, tenant: Tenant) -> Tenant:
        self.session.add(tenant)
        await self.session.flush()
        return tenant


class TierRepository(SystemRepository):
    async def get(self, name: str) -> Tier | None:
        return await self.session.get(Tier, name)

    async def list(self) -> list[Tier]:
        return list(await self.session.scalars(select(Tier).order_by(Tier.name)))
