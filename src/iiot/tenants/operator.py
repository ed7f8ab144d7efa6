"""The operator's own tenant, made on first start and by `iiot create-admin`."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from iiot.errors import Conflict
from iiot.models.tenancy import Tenant
from iiot.tenants.repository import TenantRepository


async def operator_tenant(session: AsyncSession, *, name: str, slug: str) -> Tenant:
    """The tenant of `slug`, created (enterprise tier) when no tenant has that slug.

    `Conflict` when the slug belongs to a deleted tenant not yet purged. Needs the system
    session; never commits."""
    tenants = TenantRepository(session)
    tenant = await tenants.get_by_slug(slug)
    if tenant is None and await tenants.slug_taken(slug):
        raise Conflict(
            f"the operator's tenant slug {slug!r} belongs to a deleted tenant: "
            "restore it (POST /api/v1/tenants/{id}/restore) or choose another slug "
            "with IIOT_BOOTSTRAP_TENANT_SLUG"
        )
    if tenant is None:
        tenant = await tenants.add(Tenant(name=name, slug=slug, tier="enterprise", status="active"))
    return tenant
