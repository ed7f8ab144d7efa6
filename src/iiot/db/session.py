"""Database sessions. Tenant code can only obtain a session opened from a `TenantContext`.

`Database.tenant(ctx)` begins a transaction and sets `app.tenant_id` for that transaction only
(`set_config(..., true)`), which PostgreSQL's row-level security policies read; it is safe with
connection pools and PgBouncer in transaction mode. `Database.system()` opens a transaction
with no tenant set: it sees platform tables (tenants, tiers, users) and no tenant-owned row.
Both commit when the block exits without an exception, so a caller acknowledges only after
its data is committed.
"""

from __future__ import annotations

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

_SET_TENANT = text("select set_config('app.tenant_id', :tenant_id, true)")


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
            await session.execute(_SET_TENANT, {"tenant_id": str(ctx.tenant_id)})
            yield session

    @asynccontextmanager
    async def system(self) -> AsyncIterator[AsyncSession]:
        """A transaction for platform-level work: no tenant set, so no tenant-owned row visible."""
        async with self._sessions() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
