"""Platform health queries."""

from __future__ import annotations

from sqlalchemy import text

from iiot.db.repository import SystemRepository


class PlatformRepository(SystemRepository):
    async def schema_revision(self) -> str | None:
        """The Alembic revision the database is migrated to."""
        value = await self.session.scalar(text("select version_num from alembic_version"))
        return None if value is None else str(value)
