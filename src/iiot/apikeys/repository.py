"""API key rows of the context's tenant. (The look-up of a presented key by its digest, before
any tenant is known, belongs to resolving the caller: `iiot.callers.repository`.)"""

from __future__ import annotations

import uuid

from sqlalchemy import Select, func, select

from iiot.db.repository import TenantRepository
from iiot.models.apikeys import ApiKey


class ApiKeyRepository(TenantRepository[ApiKey]):
    model = ApiKey

    def _keys(self) -> Select[ApiKey]:
        return select(ApiKey).where(ApiKey.tenant_id == self.ctx.tenant_id)

    async def list(self, *, limit: int, offset: int) -> tuple[list[ApiKey], int]:
        stmt = self._keys()
        total = await self.session.scalar(select(func.count()).select_from(stmt.subquery()))
        rows = await self.session.scalars(
            stmt.order_by(ApiKey.created_at.desc(), ApiKey.id).limit(limit).offset(offset)
        )
        return list(rows), int(total or 0)

    async def get(self, key_id: uuid.UUID, *, for_update: bool = False) -> ApiKey | None:
        stmt = self._keys().where(ApiKey.id == key_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.scalars(stmt)).one_or_none()
