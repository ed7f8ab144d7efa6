"""Statements sent straight to the driver, for the hottest reads (`Database.one_row`).

A `DriverStatement` is a SQLAlchemy SELECT compiled once to SQL text with `$n` parameters, so
the driver sends it as it is (a raw cursor), without rewriting the text on every run.

`DriverConnections` keeps connections of its own in autocommit: a statement sent on one is a
transaction of its own (no BEGIN, no COMMIT, nothing to reset afterwards), and it stays
prepared on the connection for the next run. They are opened on demand, up to `size`, and
handed out without the ORM pool's checkout, reset and return work. A connection that failed or
was interrupted mid-statement is closed, not reused; one older than `RECYCLE_SECONDS` is
replaced when next taken, like the ORM pool's (`pool_recycle`).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.pq import TransactionStatus
from sqlalchemy import ColumnElement, Select
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

_DIALECT = PGDialect_psycopg(paramstyle="numeric_dollar")  # type: ignore[no-untyped-call]
# Connections are replaced after this long, as the ORM pool's are.
RECYCLE_SECONDS = 1800


@dataclass(frozen=True, slots=True)
class DriverStatement:
    """A SELECT compiled once to the driver's SQL text (`$n` parameters), with the values of the
    parameters it holds as constants; each run supplies the others by name."""

    sql: str
    # Each `$n`'s parameter name, in order, and the constants among them.
    order: tuple[str, ...]
    constants: Mapping[str, Any]

    @classmethod
    def compile(cls, statement: Select[Any], request_parameters: frozenset[str]) -> DriverStatement:
        """`statement` for the driver; `request_parameters` name the parameters each run may
        supply (bound without conversion: the driver adapts UUIDs, dates and times itself)."""
        compiled = statement.compile(dialect=_DIALECT)
        constants: dict[str, Any] = {}
        for name, value in compiled.construct_params(_check=False).items():
            if name in request_parameters:
                continue
            bound_type = compiled.binds[name].type.dialect_impl(_DIALECT)
            processor = bound_type.bind_processor(_DIALECT)
            constants[name] = processor(value) if processor is not None else value
        order = tuple(compiled.positiontup or ())
        return cls(sql=compiled.string, order=order, constants=constants)

    def parameters(self, values: Mapping[str, Any]) -> list[Any]:
        """Every `$n`'s value, in order, from the constants and `values` (which may hold more
        than the statement uses)."""
        try:
            return [
                self.constants[name] if name in self.constants else values[name]
                for name in self.order
            ]
        except KeyError as exc:
            raise ValueError(f"no value for the statement's parameter {exc}") from None


class DriverConnections:
    """Up to `size` autocommit connections to `url` (a libpq URL), for one event loop.

    `prepare`: statements are prepared on their first run on a connection (False behind a
    transaction pooler, which cannot keep prepared statements).
    """

    def __init__(self, url: str, size: int, *, prepare: bool) -> None:
        self.url = url
        self.size = size
        self.prepare = prepare
        # Idle connections, each with the monotonic time it was opened.
        self._idle: deque[tuple[AsyncConnection[Any], float]] = deque()
        self._slots = asyncio.Semaphore(size)
        self._loop: asyncio.AbstractEventLoop | None = None

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        """An idle connection, or a new one while fewer than `size` are open; else wait."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # Connections and the semaphore serve one event loop (tests may run several).
            self._loop, self._idle, self._slots = loop, deque(), asyncio.Semaphore(self.size)
        async with self._slots:
            conn, opened = await self._take()
            reusable = False
            try:
                yield conn
                reusable = True
            finally:
                if (
                    reusable
                    and not conn.closed
                    and conn.info.transaction_status == TransactionStatus.IDLE
                ):
                    self._idle.append((conn, opened))
                else:
                    await conn.close()

    async def _take(self) -> tuple[AsyncConnection[Any], float]:
        while self._idle:
            conn, opened = self._idle.pop()
            if time.monotonic() - opened < RECYCLE_SECONDS and not conn.closed:
                return conn, opened
            await conn.close()
        conn = await AsyncConnection.connect(
            self.url, autocommit=True, prepare_threshold=5 if self.prepare else None
        )
        return conn, time.monotonic()

    async def close(self) -> None:
        idle, self._idle = self._idle, deque()
        for conn, _ in idle:
            await conn.close()


@dataclass(frozen=True, eq=False)
class TenantValues:
    """Tenant-owned values a route reads in the statement that resolves its caller: SQL
    expressions by name, built with `bindparam("tenant_id")` and the `parameters` each request
    supplies. Keep one instance per set of values: its statement is compiled once per instance.
    """

    columns: Mapping[str, ColumnElement[Any]]
    parameters: frozenset[str]
