"""Password-reset tokens (a platform table: looked up before any tenant is known)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, select, update

from iiot.db.repository import SystemRepository
from iiot.models.base import utcnow
from iiot.models.users import PasswordResetToken


class PasswordResetRepository(SystemRepository):
    async def add(self, token: PasswordResetToken) -> None:
        self.session.add(token)
        await self.session.flush()

    async def by_hash_for_update(self, token_hash: bytes) -> PasswordResetToken | None:
        stmt = (
            select(PasswordResetToken)
            .where(PasswordResetToken.token_hash == token_hash)
            .with_for_update()
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def spend_open(self, user_id: uuid.UUID) -> int:
        """Mark every unused token of the user used (a newer one, or a new password, wins)."""
        stmt = (
            update(PasswordResetToken)
            .where(PasswordResetToken.user_id == user_id, PasswordResetToken.used_at.is_(None))
            .values(used_at=utcnow())
        )
        result = await self.session.execute(stmt)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def delete_expired(self, before: datetime) -> int:
        stmt = delete(PasswordResetToken).where(PasswordResetToken.expires_at < before)
        result = await self.session.execute(stmt)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
