"""Database sessions. Tenant code can only obtain a session opened from a `TenantContext`.

`Database.tenant(ctx)` begins a transaction and sets `app.tenant_id` for that transaction only
(`set_config(..., true)`), which PostgreSQL's row-level security policies read; it is safe with
connection pools and PgBouncer in transaction mode. `Database.system()` opens a transaction
with no tenant set: it sees platform tables (tenants, tiers, users) and no tenant-owned row.
Both commit when the block exits without an exception, so a caller acknowledges only after
its data is committed.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

if TYPE_CHECKING:
    from iiot.tenancy.context import TenantContext

# The transaction-local setting the row-level security policies read (iiot.migrations.rls).
TENANT_SETTING = "app.tenant_id"


def set_tenant_sql(tenant_id: uuid.UUID) -> str:
    """The one statement that scopes the current transaction to a tenant.

    Used by tenant sessions and by the telemetry writer's raw connections alike. The id is
    rendered from a `uuid.UUID` (hex digits and hyphens only), so it is safe as a literal and
    the statement can travel in one simple query with BEGIN."""
    value = uuid.UUID(str(tenant_id))
    return f"select set_config('{TENANT_SETTING}', '{value}', true)"


class TenantSession(AsyncSession):
    """A session opened by `Database.tenant(ctx)`, carrying that context: only `ctx`'s tenant
    rows are visible or writable in it. Tenant repositories accept nothing else."""

    ctx: TenantContext


class Database:
    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.engine: AsyncEngine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_recycle=1800,
        )
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=True)
        self._tenant_sessions = async_sessionmaker(
            self.engine, class_=TenantSession, expire_on_commit=False, autoflush=True
        )

    @asynccontextmanager
    async def tenant(self, ctx: TenantContext) -> AsyncIterator[TenantSession]:
        """A transaction in which only `ctx`'s tenant rows are visible or writable."""
        async with self._tenant_sessions() as session, session.begin():
            session.ctx = ctx
            await session.execute(text(set_tenant_sql(ctx.tenant_id)))
            yield session

    @asynccontextmanager
    async def system(self) -> AsyncIterator[AsyncSession]:
        """A transaction for platform-level work: no tenant set, so no tenant-owned row visible."""
        async with self._sessions() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
