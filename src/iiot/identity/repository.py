"""Refresh tokens (a platform table: looked up before any tenant is known)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update

from iiot.db.repository import SystemRepository
from iiot.models.base import utcnow
from iiot.models.users import RefreshToken


class RefreshTokenRepository(SystemRepository):
    async def add(self, token: RefreshToken) -> None:
        self.session.add(token)
        await self.session.flush()

    async def by_hash_for_update(self, token_hash: bytes) -> RefreshToken | None:
        stmt = select(RefreshToken).where(RefreshToken.token_hash == token_hash).with_for_update()
        return (await self.session.scalars(stmt)).one_or_none()

    async def revoke_family(self, family_id: uuid.UUID, at: datetime | None = None) -> int:
        stmt = (
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=at or utcnow())
        )
        result = await self.session.execute(stmt)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def revoke_for_membership(self, user_id: uuid.UUID, tenant_id: uuid.UUID) -> int:
        """Revoke a user's refresh tokens whose active tenant is `tenant_id`."""
        stmt = (
            update(RefreshToken)
            .where(
                RefreshToken.user_id == user_id,
                RefreshToken.active_tenant_id == tenant_id,
                RefreshToken.revoked_at.is_(None),
            )
            .values(revoked_at=utcnow())
        )
        result = await self.session.execute(stmt)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def revoke_for_user(self, user_id: uuid.UUID) -> int:
        stmt = (
            update(RefreshToken)
            .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        result = await self.session.execute(stmt)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
