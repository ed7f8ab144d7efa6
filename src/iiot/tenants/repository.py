"""Tenants and tiers (platform tables: reachable from the system session and, for the
context's own tenant row, from a tenant session)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, or_, select, text

from iiot.db.repository import SystemRepository
from iiot.models.tenancy import Tenant, Tier

# Channel on which a tenant's status change (suspended, activated, deleted) is announced;
# payload is the tenant id. Live device sessions of a suspended tenant are closed on it.


def _like_pattern(text: str) -> str:
    """A substring ILIKE pattern in which the user's `%`, `_` and `\\` match literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class TenantRepository(SystemRepository):
    async def get(self, tenant_id: uuid.UUID) -> Tenant | None:
        tenant = await self.session.get(Tenant, tenant_id)
        return tenant if tenant is not None and tenant.deleted_at is None else None

    async def get_for_update(self, tenant_id: uuid.UUID) -> Tenant | None:
        stmt = (
            select(Tenant)
            .where(Tenant.id == tenant_id, Tenant.deleted_at.is_(None))
            .with_for_update()
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def get_deleted_for_update(self, tenant_id: uuid.UUID) -> Tenant | None:
        """A soft-deleted tenant not yet purged."""
        stmt = (
            select(Tenant)
            .where(Tenant.id == tenant_id, Tenant.deleted_at.is_not(None))
            .with_for_update()
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def get_by_slug(self, slug: str) -> Tenant | None:
        stmt = select(Tenant).where(Tenant.slug == slug, Tenant.deleted_at.is_(None))
        return (await self.session.scalars(stmt)).one_or_none()

    async def lock_slug(self, slug: str) -> None:
        """Serialise claims of one slug until the end of the transaction, so that of two
        concurrent creates with the same slug the second sees the first and is refused."""
        await self.session.execute(
            text("select pg_advisory_xact_lock(hashtext('iiot.tenant.slug'), hashtext(:slug))"),
            {"slug": slug},
        )

    async def slug_taken(self, slug: str, *, other_than: uuid.UUID | None = None) -> bool:
        """Whether any tenant, deleted ones included until purged, holds `slug`."""
        stmt = select(Tenant.id).where(Tenant.slug == slug)
        if other_than is not None:
            stmt = stmt.where(Tenant.id != other_than)
        return (await self.session.scalar(stmt.limit(1))) is not None

    async def add(self, tenant: Tenant) -> Tenant:
        self.session.add(tenant)
        await self.session.flush()
        return tenant

    async def flush(self) -> None:
        await self.session.flush()

    async def page(
        self,
        *,
        tier: str | None,
        status: str | None,
        search: str | None,
        limit: int,
        offset: int,
    ) -> tuple[list[Tenant], int]:
        stmt = select(Tenant).where(Tenant.deleted_at.is_(None))
        if tier:
            stmt = stmt.where(Tenant.tier == tier)
        if status:
            stmt = stmt.where(Tenant.status == status)
        if search:
            pattern = _like_pattern(search)
            stmt = stmt.where(
                or_(
                    Tenant.name.ilike(pattern, escape="\\"), Tenant.slug.ilike(pattern, escape="\\")
                )
            )
        total = await self.session.scalar(select(func.count()).select_from(stmt.subquery()))
        rows = await self.session.scalars(
            stmt.order_by(Tenant.created_at, Tenant.id).limit(limit).offset(offset)
        )
        return list(rows), int(total or 0)

    async def purge_deleted_before(self, cutoff: datetime) -> Sequence[uuid.UUID]:
        """Delete tenants soft-deleted before `cutoff`; their rows go by ON DELETE CASCADE."""
        stmt = (
            delete(Tenant)
            .where(Tenant.deleted_at.is_not(None), Tenant.deleted_at < cutoff)
            .returning(Tenant.id)
        )
        return (await self.session.scalars(stmt)).all()


class TierRepository(SystemRepository):
    async def get(self, name: str) -> Tier | None:
        return await self.session.get(Tier, name)

    async def get_for_update(self, name: str) -> Tier | None:
        stmt = select(Tier).where(Tier.name == name).with_for_update()
        return (await self.session.scalars(stmt)).one_or_none()

    async def list(self) -> list[Tier]:
        return list(await self.session.scalars(select(Tier).order_by(Tier.name)))

    async def by_names(self, names: set[str]) -> dict[str, Tier]:
        if not names:
            return {}
        rows = await self.session.scalars(select(Tier).where(Tier.name.in_(names)))
        return {t.name: t for t in rows}

    async def flush(self) -> None:
        await self.session.flush()
