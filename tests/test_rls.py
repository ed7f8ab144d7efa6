"""Row-level security, proven against the database itself as the application role.

No repository or service is involved: a generic row is written as the owner into every
tenant-owned table for tenants A and B, then the application role connects directly and tries
to read, change and create rows. The tables are discovered from the catalog, so a table added
by a later migration is covered without touching this file.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import psycopg
import pytest
from fastapi import FastAPI
from psycopg import errors, sql
from sqlalchemy import text

from iiot.db.setup import plain_url
from iiot.runtime import Runtime
from iiot.tenancy.context import system_context
from tests.fixtures.database import Cleaner, TestDatabase
from tests.fixtures.factories import Factory
from tests.fixtures.kept import made_once
from tests.fixtures.tenant_tables import (
    PARTITIONS_SQL,
    REQUIRED_TENANT_TABLES,
    Seeded,
    seed_tenant_rows,
)


@dataclass(frozen=True)
class Probe:
    a: uuid.UUID
    b: uuid.UUID
    seeded: Seeded
    partitions: set[str]
    # Tables the application role may read at all. A partition created at run time gets no
    # grant (it is reached through its parent), which hides it even more thoroughly.
    readable: list[str]

    @property
    def parents(self) -> list[str]:
        """Tables holding one probe row per tenant (partitions get theirs through the parent)."""
        return [
            t
            for t in self.seeded.tables
            if t not in self.partitions and t not in self.seeded.failed
        ]


async def _make_probe(factory: Factory, db_urls: TestDatabase) -> Probe:
    a = await factory.tenant(name="RLS Alpha")
    b = await factory.tenant(name="RLS Bravo")
    seeded = seed_tenant_rows(db_urls.admin_url, [a.id, b.id])
    with psycopg.connect(plain_url(db_urls.admin_url)) as conn:
        partitions = {r[0] for r in conn.execute(PARTITIONS_SQL).fetchall()}
        readable = [
            t
            for t in seeded.tables
            if conn.execute(
                "select has_table_privilege(%s, %s, 'SELECT')", (db_urls.app_role, t)
            ).fetchone()
            == (True,)
        ]
    assert set(seeded.tables) - set(readable) <= partitions
    return Probe(a=a.id, b=b.id, seeded=seeded, partitions=partitions, readable=readable)


@pytest.fixture(scope="module")
async def _probe_once(
    runtime: Runtime, app: FastAPI, db_urls: TestDatabase, database_cleaner: Cleaner
) -> AsyncIterator[Probe | None]:
    """The probe rows, written once and kept by the cleaner (each test gets them back as they
    were); None where the cleaner cannot keep rows (they are then written for every test)."""
    async with made_once(
        runtime, app, database_cleaner, lambda factory: _make_probe(factory, db_urls)
    ) as made:
        yield made


@pytest.fixture
async def probe(_probe_once: Probe | None, factory: Factory, db_urls: TestDatabase) -> Probe:
    return _probe_once if _probe_once is not None else await _make_probe(factory, db_urls)


@pytest.fixture
def app_conn(db_urls: TestDatabase) -> Iterator[psycopg.Connection]:
    with psycopg.connect(plain_url(db_urls.app_url)) as conn:
        yield conn


@pytest.fixture
def owner_conn(db_urls: TestDatabase) -> Iterator[psycopg.Connection]:
    with psycopg.connect(plain_url(db_urls.admin_url), autocommit=True) as conn:
        yield conn


def _count(conn: psycopg.Connection, table: str, where: str = "true", *args: object) -> int:
    query = sql.SQL("select count(*) from {} where " + where).format(sql.Identifier(table))
    row = conn.execute(query, args).fetchone()
    assert row is not None
    return int(row[0])


def _set_tenant(conn: psycopg.Connection, tenant_id: uuid.UUID | str) -> None:
    conn.execute("select set_config('app.tenant_id', %s, true)", (str(tenant_id),))


def test_every_tenant_table_is_probed(probe: Probe, owner_conn: psycopg.Connection) -> None:
    assert set(REQUIRED_TENANT_TABLES) <= set(probe.seeded.tables)
    assert probe.seeded.failed == {}, f"no generic row could be written: {probe.seeded.failed}"
    for table in probe.parents:
        for tenant in (probe.a, probe.b):
            assert _count(owner_conn, table, "tenant_id = %s", tenant) == 1, table


def test_no_tenant_set_sees_nothing(probe: Probe, app_conn: psycopg.Connection) -> None:
    visible = {t: _count(app_conn, t) for t in probe.readable}
    assert visible == dict.fromkeys(probe.readable, 0)


def test_empty_tenant_setting_sees_nothing(probe: Probe, app_conn: psycopg.Connection) -> None:
    _set_tenant(app_conn, "")
    visible = {t: _count(app_conn, t) for t in probe.readable}
    assert visible == dict.fromkeys(probe.readable, 0)


def test_tenant_a_sees_only_its_own_rows(probe: Probe, app_conn: psycopg.Connection) -> None:
    _set_tenant(app_conn, probe.a)
    for table in probe.readable:
        assert _count(app_conn, table, "tenant_id = %s", probe.b) == 0, table
        assert _count(app_conn, table, "tenant_id <> %s", probe.a) == 0, table
    for table in probe.parents:
        assert _count(app_conn, table) == 1, f"{table}: A's own row must stay visible"


def test_tenant_setting_is_transaction_local(probe: Probe, app_conn: psycopg.Connection) -> None:
    _set_tenant(app_conn, probe.a)
    app_conn.commit()
    assert _count(app_conn, "memberships") == 0


def test_tenant_a_cannot_update_or_delete_b_rows(
    probe: Probe, app_conn: psycopg.Connection, owner_conn: psycopg.Connection
) -> None:
    for table in probe.readable:
        _set_tenant(app_conn, probe.a)
        name = sql.Identifier(table)
        updated = app_conn.execute(
            sql.SQL("update {} set tenant_id = tenant_id where tenant_id = %s").format(name),
            (probe.b,),
        )
        deleted = app_conn.execute(
            sql.SQL("delete from {} where tenant_id = %s").format(name), (probe.b,)
        )
        assert (table, updated.rowcount, deleted.rowcount) == (table, 0, 0)
        app_conn.commit()
    for table in probe.parents:
        assert _count(owner_conn, table, "tenant_id = %s", probe.b) == 1, table


def test_tenant_a_cannot_insert_rows_for_b(probe: Probe, app_conn: psycopg.Connection) -> None:
    for table in probe.parents:
        _set_tenant(app_conn, probe.a)
        with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
            app_conn.execute(
                sql.SQL("insert into {} (tenant_id) values (%s)").format(sql.Identifier(table)),
                (probe.b,),
            )
        app_conn.rollback()


def test_no_tenant_set_cannot_insert(probe: Probe, app_conn: psycopg.Connection) -> None:
    for table in probe.parents:
        with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
            app_conn.execute(
                sql.SQL("insert into {} (tenant_id) values (%s)").format(sql.Identifier(table)),
                (probe.a,),
            )
        app_conn.rollback()


def test_tenant_a_cannot_move_its_rows_to_b(
    probe: Probe, app_conn: psycopg.Connection, owner_conn: psycopg.Connection
) -> None:
    for table in probe.parents:
        _set_tenant(app_conn, probe.a)
        with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
            app_conn.execute(
                sql.SQL("update {} set tenant_id = %s").format(sql.Identifier(table)), (probe.b,)
            )
        app_conn.rollback()
        assert _count(owner_conn, table, "tenant_id = %s", probe.a) == 1, table


async def test_tenant_session_sees_only_its_tenant_without_any_filter(
    probe: Probe, runtime: Runtime
) -> None:
    """The repository filter removed: an unfiltered query in A's session still returns only A."""
    async with runtime.db.tenant(system_context(probe.a)) as session:
        for table in probe.readable:
            rows = (await session.execute(text(f'select tenant_id from "{table}"'))).scalars()
            assert set(rows) <= {probe.a}, table
        seen = await session.scalar(text("select count(*) from memberships"))
        assert seen == 1
    async with runtime.db.system() as session:
        assert await session.scalar(text("select count(*) from memberships")) == 0


def test_app_role_is_plain(db_urls: TestDatabase, app_conn: psycopg.Connection) -> None:
    row = app_conn.execute(
        "select rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolinherit "
        "from pg_roles where rolname = current_user"
    ).fetchone()
    assert row is not None
    assert row[:4] == (False, False, False, False)
    memberships = app_conn.execute(
        "select count(*) from pg_auth_members m join pg_roles r on r.oid = m.member "
        "where r.rolname = current_user"
    ).fetchone()
    assert memberships == (0,), "the app role must not inherit another role's rights"


@pytest.mark.parametrize(
    "statement",
    [
        "set role postgres",
        "set session authorization postgres",
        "alter table memberships disable row level security",
        "alter table memberships no force row level security",
        "drop policy tenant_isolation on memberships",
        "create policy open_door on memberships using (true)",
        "truncate memberships",
        "alter role current_user bypassrls",
        "create table app_owned (tenant_id uuid)",
    ],
)
def test_app_role_cannot_escape(
    probe: Probe, app_conn: psycopg.Connection, owner_conn: psycopg.Connection, statement: str
) -> None:
    with pytest.raises(psycopg.Error) as failure:
        app_conn.execute(statement)
    assert isinstance(failure.value, errors.InsufficientPrivilege | errors.InvalidParameterValue)
    app_conn.rollback()
    assert _count(owner_conn, "memberships") == 2
