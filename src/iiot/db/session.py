"""Database sessions. Tenant code can only obtain a session opened from a `TenantContext`.

`Database.tenant(ctx)` begins a transaction and sets `app.tenant_id` for that transaction only
(`set_config(..., true)`), which PostgreSQL's row-level security policies read; it is safe with
connection pools and PgBouncer in transaction mode. `Database.system()` opens a transaction
with no tenant set: it sees platform tables (tenants, tiers, users) and no tenant-owned row.
Both commit when the block exits without an exception, so a caller acknowledges only after
its data is committed.

`Database.one_row(statement, values)` runs one statement compiled for the driver
(`iiot.db.driver.DriverStatement`) as a transaction of its own, on a connection in autocommit:
no BEGIN or COMMIT travels, and a tenant setting the statement makes itself (`tenant_scope`)
ends with it. It serves the hottest reads, which resolve their caller and read their figures
in one round trip.

`Database.tenant_statements(tenant_id, statements)` writes the same way: BEGIN, the tenant
setting, the statements and COMMIT sent together in one simple query on such a connection,
for small writes that would otherwise cost an ORM session and four round trips.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, LiteralString

from psycopg import AsyncClientCursor, AsyncConnection, AsyncRawCursor
from sqlalchemy import ColumnElement, Text, cast, func, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from iiot.db.driver import DriverConnections, DriverStatement
from iiot.db.setup import plain_url, sqlalchemy_url

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


def tenant_scope(tenant_id: ColumnElement[Any]) -> ColumnElement[str]:
    """`set_config('app.tenant_id', <tenant_id>, true)` as an expression of a statement that
    scopes its own transaction (run alone, in autocommit, by `Database.one_row`).

    The setting holds from the moment the expression is evaluated to the end of the statement.
    PostgreSQL evaluates a CASE's result only when its condition holds, so a value written
    `CASE WHEN <this> IS NOT NULL THEN <subquery> END` is read with the tenant set and
    row-level security in force; what the statement reads elsewhere (its FROM clause) is read
    before, as in a system session: platform tables only.
    """
    return func.set_config(TENANT_SETTING, cast(tenant_id, Text), True)


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
    which a transaction pooler cannot keep (default: when a direct URL is given).

    `pool_size` connections are kept in all: a quarter of them (at least one) serve
    `one_row`, the rest the sessions, which may open up to `pool_size` more in a burst."""

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
        # One-statement reads hold a connection for one round trip: a few serve many.
        driver_size = max(1, pool_size // 4)
        self.engine: AsyncEngine = create_async_engine(
            url,
            pool_size=max(1, pool_size - driver_size),
            max_overflow=pool_size,
            pool_recycle=1800,
            connect_args=connect_args,
        )
        self._session_engine: AsyncEngine | None = None
        self.driver = DriverConnections(plain_url(url), driver_size, prepare=not self.pooled)
        self.statement_observers: list[Callable[[str, AsyncConnection[Any]], None]] = []
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

    async def one_row(
        self, statement: DriverStatement, values: Mapping[str, Any]
    ) -> tuple[Any, ...] | None:
        """The first row of `statement`, sent alone as its own transaction on a connection of
        `driver` (autocommit): one round trip, without the ORM, a session or a BEGIN.

        Each observer in `statement_observers` is told of the statement and the connection
        it is sent on before it is sent (what watches the application's SQL sees it too).
        """
        params = statement.parameters(values)
        async with self.driver.connection() as conn:
            cur = AsyncRawCursor(conn)
            for observe in self.statement_observers:
                observe(statement.sql, conn)
            await cur.execute(statement.sql, params, prepare=None if self.pooled else True)
            return await cur.fetchone()

    async def tenant_statements(
        self,
        tenant_id: uuid.UUID,
        statements: Sequence[tuple[LiteralString, Sequence[Any] | Mapping[str, Any]]],
    ) -> None:
        """`statements` (SQL with `%s` or `%(name)s` parameters, and their values) in one
        transaction scoped to `tenant_id` (row-level security in force), committed before this
        returns.

        BEGIN, the tenant setting, the statements and COMMIT travel as one simple query on a
        connection of `driver`: one round trip, without the ORM or a session. The driver
        renders the values as literals (a client-side cursor), so nothing is prepared; a
        transaction pooler passes the query through as it is. If a statement fails, the
        transaction is not committed and the connection is closed.

        Each observer in `statement_observers` is told of the query before it is sent.
        """
        async with self.driver.connection() as conn:
            cur = AsyncClientCursor(conn)
            parts = ["begin", set_tenant_sql(tenant_id)]
            parts.extend(cur.mogrify(sql, params) for sql, params in statements)
            parts.append("commit")
            query = "; ".join(parts)
            for observe in self.statement_observers:
                observe(query, conn)
            await conn.execute(query.encode())

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
        await self.driver.close()
        await self.engine.dispose()
        if self._session_engine is not None:
            await self._session_engine.dispose()
