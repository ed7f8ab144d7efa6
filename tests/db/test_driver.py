"""One-statement reads (`Database.one_row`): compiled once, sent alone in autocommit on
connections of their own, which are reused while healthy and replaced when interrupted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Integer, Uuid, bindparam, literal_column, select

from iiot.db.driver import DriverStatement
from iiot.db.session import Database
from tests.fixtures.database import TestDatabase

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
