"""One-statement reads (`Database.one_row`): compiled once, sent alone in autocommit on
connections of their own, which are reused while healthy and replaced when interrupted.
Tenant writes on the same connections (`Database.tenant_statements`): one round trip, with the
tenant set (row-level security in force), committed whole or not at all."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from psycopg.errors import DivisionByZero, InsufficientPrivilege
from sqlalchemy import Integer, Uuid, bindparam, literal_column, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from iiot.db.driver import DriverStatement
from iiot.db.session import Database
from tests.fixtures.database import TestDatabase
from tests.fixtures.factories import Factory

_BACKEND = DriverStatement.compile(select(literal_column("pg_backend_pid()")), frozenset())


@pytest.fixture
async def one_connection_db(db_urls: TestDatabase) -> AsyncIterator[Database]:
    db = Database(db_urls.app_url, pool_size=1)
    yield db
    await db.dispose()


def test_constants_are_bound_once_and_values_by_name() -> None:
    statement = DriverStatement.compile(
        select(
            bindparam("a", type_=Integer),
            bindparam("b", type_=Uuid),
            bindparam("a", type_=Integer),
            literal_column("'%'"),
        ).where(bindparam("fixed", 7, type_=Integer) == literal_column("7")),
        frozenset({"a", "b"}),
    )
    assert "$1" in statement.sql
    assert "%%" not in statement.sql  # sent as it is: no placeholder escaping
    assert statement.order.count("a") == 1  # one $n per name
    assert statement.constants == {"fixed": 7}
    params = statement.parameters({"a": 1, "b": None, "unused": "x"})
    assert params == [{"a": 1, "b": None, "fixed": 7}[n] for n in statement.order]
    with pytest.raises(ValueError, match="'b'"):
        statement.parameters({"a": 1})


async def test_a_healthy_connection_is_reused(one_connection_db: Database) -> None:
    first = await one_connection_db.one_row(_BACKEND, {})
    second = await one_connection_db.one_row(_BACKEND, {})
    assert first is not None
    assert second is not None
    assert first[0] == second[0]


async def test_an_interrupted_statement_does_not_leave_its_connection_in_use(
    one_connection_db: Database,
) -> None:
    before = await one_connection_db.one_row(_BACKEND, {})
    sleep = DriverStatement.compile(select(literal_column("pg_sleep(5)")), frozenset())
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(one_connection_db.one_row(sleep, {}), timeout=0.2)
    after = await one_connection_db.one_row(_BACKEND, {})
    assert before is not None
    assert after is not None
    assert after[0] != before[0]  # a new connection: the interrupted one was closed


async def _locations(engine: AsyncEngine, ids: list[uuid.UUID]) -> dict[uuid.UUID, str | None]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("select id, location from devices where id = any(:ids)"), {"ids": ids}
        )
        return {row.id: row.location for row in rows}


async def _device(engine: AsyncEngine, tenant_id: uuid.UUID) -> uuid.UUID:
    device_id = uuid.uuid4()
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "insert into devices (tenant_id, id, name, status, location)"
                " values (:t, :d, 'probe', 'offline', 'start')"
            ),
            {"t": tenant_id, "d": device_id},
        )
    return device_id


async def test_tenant_statements_are_one_committed_transaction_of_the_tenant(
    one_connection_db: Database, factory: Factory, owner_engine: AsyncEngine
) -> None:
    a, b = await factory.tenant(), await factory.tenant()
    mine, theirs = await _device(owner_engine, a.id), await _device(owner_engine, b.id)
    sent: list[tuple[str, bool]] = []

    def observe(query: str, conn: Any) -> None:
        sent.append((query, bool(conn.autocommit)))

    one_connection_db.statement_observers.append(observe)
    # Not filtered by tenant: row-level security alone keeps the other tenant's row out.
    await one_connection_db.tenant_statements(
        a.id,
        [
            ("update devices set location = %s where id = any(%s)", ["moved", [mine, theirs]]),
            (
                "update devices set location = location || %(s)s where id = %(d)s",
                {"s": "!", "d": mine},
            ),
        ],
    )
    assert await _locations(owner_engine, [mine, theirs]) == {mine: "moved!", theirs: "start"}
    # One query on an autocommit connection: BEGIN, the tenant setting, the statements, COMMIT.
    assert len(sent) == 1
    query, autocommit = sent[0]
    assert autocommit
    assert query.startswith(f"begin; select set_config('app.tenant_id', '{a.id}', true); ")
    assert query.endswith("; commit")

    # A statement that fails leaves nothing written; the next transaction goes through.
    with pytest.raises(DivisionByZero):
        await one_connection_db.tenant_statements(
            a.id,
            [
                ("update devices set location = 'lost' where id = %s", [mine]),
                ("select 1 / 0", []),
            ],
        )
    assert await _locations(owner_engine, [mine]) == {mine: "moved!"}
    await one_connection_db.tenant_statements(
        a.id, [("update devices set location = 'again' where id = %s", [mine])]
    )
    assert await _locations(owner_engine, [mine]) == {mine: "again"}


async def test_tenant_statements_cannot_write_another_tenants_rows(
    one_connection_db: Database, factory: Factory, owner_engine: AsyncEngine
) -> None:
    a, b = await factory.tenant(), await factory.tenant()
    theirs = await _device(owner_engine, b.id)
    with pytest.raises(InsufficientPrivilege, match="row-level security"):
        await one_connection_db.tenant_statements(
            a.id,
            [
                (
                    "insert into devices (tenant_id, id, name, status)"
                    " values (%s, %s, 'x', 'offline')",
                    [b.id, uuid.uuid4()],
                )
            ],
        )
    await one_connection_db.tenant_statements(
        a.id, [("update devices set location = 'taken' where id = %s", [theirs])]
    )
    assert await _locations(owner_engine, [theirs]) == {theirs: "start"}
