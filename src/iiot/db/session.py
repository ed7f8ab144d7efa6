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
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from iiot.db.setup import sqlalchemy_url

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


@dataclass(frozen=True, slots=True)
class TenantScope:
    """A resolved caller and the transaction it was resolved in, scoped to its tenant: a route
    taking one does its work in `session` (no transaction of its own)."""

    ctx: TenantContext
    session: TenantSession


class Database:
    """`url` serves transactions (it may be a PgBouncer in transaction-pooling mode);
    `session_url` (`direct_url`, else `url`) is for what needs a server session of its own:
    LISTEN and session advisory locks. `pooled` turns off server-side prepared statements,
    which a transaction pooler cannot keep (default: when a direct URL is given)."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        direct_url: str | None = None,
        pooled: bool | None = None,
    ) -> None:
        self.url = url
        self.session_url = sqlalchemy_url(direct_url) if direct_url else url
        self.pooled = pooled if pooled is not None else direct_url is not None
        connect_args: dict[str, object] = {"prepare_threshold": None} if self.pooled else {}
        self.engine: AsyncEngine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_recycle=1800,
            connect_args=connect_args,
        )
        self._session_engine: AsyncEngine | None = None
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

    @property
    def session_engine(self) -> AsyncEngine:
        """Connections that keep one server session (advisory locks held across commits)."""
        if self.session_url == self.url:
            return self.engine
        if self._session_engine is None:
            self._session_engine = create_async_engine(
                self.session_url, pool_size=2, max_overflow=4, pool_recycle=1800
            )
        return self._session_engine

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._session_engine is not None:
            await self._session_engine.dispose()
