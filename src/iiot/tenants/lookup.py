"""What other domains may read of a tenant, and nothing else.

From the system session any tenant is found; from a tenant session only the context's own.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from iiot.models.tenancy import Tenant
from iiot.tenants.repository import TenantRepository


async def tenant(session: AsyncSession, tenant_id: uuid.UUID) -> Tenant | None:
    """The tenant, unless it was deleted."""
    return await TenantRepository(session).get(tenant_id)
