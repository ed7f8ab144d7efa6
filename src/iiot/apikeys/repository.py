"""API key rows. The cross-tenant look-up by digest goes through `iiot_api_key_by_token()`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Select, func, select, text, update

from iiot.db.repository import SystemRepository, TenantRepository
from iiot.models.apikeys import ApiKey


@dataclass(frozen=True)
class LiveApiKey:
    id: uuid.UUID
    tenant_id: uuid.UUID
    scopes: frozenset[str]
    expires_at: datetime | None
    last_used_at: datetime | None
    tenant_status: str


_BY_TOKEN = text(
    "select id, tenant_id, scopes, expires_at, last_used_at, tenant_status "
    "from iiot_api_key_by_token(:digest)"
)


class ApiKeyLookup(SystemRepository):
    async def by_digest(self, token_digest: bytes) -> LiveApiKey | None:
        row = (await self.session.execute(_BY_TOKEN, {"digest": token_digest})).first()
        if row is None:
            return None
        return LiveApiKey(
            id=row[0],
            tenant_id=row[1],
            scopes=frozenset(row[2]),
            expires_at=row[3],
            last_used_at=row[4],
            tenant_status=row[5],
        )


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

    async def touch(self, key_id: uuid.UUID, *, stale_seconds: int) -> None:
        """Set last_used_at unless it was set within `stale_seconds` (one write per interval)."""
        await self.session.execute(
            update(ApiKey)
            .where(
                ApiKey.tenant_id == self.ctx.tenant_id,
                ApiKey.id == key_id,
                (ApiKey.last_used_at.is_(None))
                | (ApiKey.last_used_at < datetime.now(UTC) - timedelta(seconds=stale_seconds)),
            )
            .values(last_used_at=func.now())
        )
