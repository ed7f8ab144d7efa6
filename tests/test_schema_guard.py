"""The migrated schema keeps the isolation rules, whoever adds the next table.

Checked from the catalog of the test database (migrated by Alembic as the owner):
RLS enabled and forced with a tenant policy on every table that has a `tenant_id` column,
`tenant_id` first in every such primary key, composite foreign keys between tenant tables,
an application role that owns nothing and bypasses nothing, SECURITY DEFINER functions that pin
their search_path and are not executable by PUBLIC, and models that match the migrations.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from iiot.db.setup import plain_url
from iiot.models import Base
from tests.fixtures.database import TestDatabase
from tests.fixtures.tenant_tables import PARTITIONS_SQL, REQUIRED_TENANT_TABLES, tenant_tables

TENANT_SETTING = "current_setting('app.tenant_id'"


@pytest.fixture
def catalog(db_urls: TestDatabase) -> Iterator[psycopg.Connection]:
    with psycopg.connect(plain_url(db_urls.admin_url), autocommit=True) as conn:
        yield conn


@pytest.fixture
def tables(catalog: psycopg.Connection) -> list[str]:
    found = tenant_tables(catalog)
    assert set(REQUIRED_TENANT_TABLES) <= set(found)
    return found


def _rows(conn: psycopg.Connection, query: str, *args: Any) -> list[tuple[Any, ...]]:
    return conn.execute(query, args).fetchall()


def test_rls_enabled_and_forced_on_every_tenant_table(
    catalog: psycopg.Connection, tables: list[str]
) -> None:
    rows = _rows(
        catalog,
        "select relname, relrowsecurity, relforcerowsecurity from pg_class "
        "where relname = any(%s) and relnamespace = 'public'::regnamespace",
        tables,
    )
    missing = [name for name, enabled, forced in rows if not (enabled and forced)]
    assert len(rows) == len(tables)
    assert missing == [], f"RLS not enabled and forced on: {missing}"


def test_every_tenant_table_has_the_tenant_policy(
    catalog: psycopg.Connection, tables: list[str]
) -> None:
    policies = _rows(
        catalog,
        "select c.relname, p.polname, p.polcmd, p.polpermissive, "
        "pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid) "
        "from pg_policy p join pg_class c on c.oid = p.polrelid where c.relname = any(%s)",
        tables,
    )
    by_table: dict[str, list[tuple[Any, ...]]] = {t: [] for t in tables}
    for row in policies:
        by_table[row[0]].append(row)
    problems: list[str] = []
    for table, table_policies in by_table.items():
        covering = [
            p for p in table_policies if p[2] == "*" and _tenant_bound(p[4]) and _tenant_bound(p[5])
        ]
        if not covering:
            problems.append(f"{table}: no policy for all commands with USING and WITH CHECK")
        # Permissive policies are OR-ed: one that does not bind the tenant opens the table.
        problems += [
            f"{table}.{name}: a permissive policy not bound to the tenant"
            for _, name, _, permissive, using, check in table_policies
            if permissive and not _all_tenant_bound(using, check)
        ]
    assert problems == []


def _tenant_bound(expr: str | None) -> bool:
    return expr is not None and "tenant_id" in expr and TENANT_SETTING in expr


def _all_tenant_bound(*exprs: str | None) -> bool:
    present = [e for e in exprs if e is not None]
    return bool(present) and all(_tenant_bound(e) for e in present)


def test_tenant_id_leads_every_primary_key(catalog: psycopg.Connection, tables: list[str]) -> None:
    rows = _rows(
        catalog,
        "select c.relname, a.attname from pg_index i "
        "join pg_class c on c.oid = i.indrelid "
        "join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0] "
        "where i.indisprimary and c.relname = any(%s)",
        tables,
    )
    leading = dict(rows)
    assert set(leading) == set(tables), f"no primary key: {set(tables) - set(leading)}"
    wrong = {t: col for t, col in leading.items() if col != "tenant_id"}
    assert wrong == {}, f"primary key not led by tenant_id: {wrong}"


def test_foreign_keys_between_tenant_tables_carry_tenant_id(
    catalog: psycopg.Connection, tables: list[str]
) -> None:
    """A row can never point into another tenant: foreign keys are checked without RLS."""
    rows = _rows(
        catalog,
        "select con.conname, src.relname, "
        "array(select attname from unnest(con.conkey) with ordinality k(n, i) "
        "      join pg_attribute on attrelid = con.conrelid and attnum = k.n order by k.i), "
        "array(select attname from unnest(con.confkey) with ordinality k(n, i) "
        "      join pg_attribute on attrelid = con.confrelid and attnum = k.n order by k.i) "
        "from pg_constraint con "
        "join pg_class src on src.oid = con.conrelid "
        "join pg_class dst on dst.oid = con.confrelid "
        "where con.contype = 'f' and con.conparentid = 0 "
        "and src.relname = any(%s) and dst.relname = any(%s)",
        tables,
        tables,
    )
    loose = [
        f"{table}.{name} {list(src)} -> {list(dst)}"
        for name, table, src, dst in rows
        if ("tenant_id", "tenant_id") not in zip(src, dst, strict=True)
    ]
    assert loose == [], f"foreign keys between tenant tables without tenant_id: {loose}"


def test_app_role_owns_nothing_and_bypasses_nothing(
    catalog: psycopg.Connection, db_urls: TestDatabase
) -> None:
    role = db_urls.app_role
    owned = _rows(
        catalog,
        "select 'relation ' || relname from pg_class where relowner = to_regrole(%s) "
        "union all select 'function ' || proname from pg_proc where proowner = to_regrole(%s) "
        "union all select 'schema ' || nspname from pg_namespace where nspowner = to_regrole(%s) "
        "union all select 'type ' || typname from pg_type where typowner = to_regrole(%s)",
        role,
        role,
        role,
        role,
    )
    assert owned == []
    flags = _rows(
        catalog,
        "select rolsuper, rolbypassrls, rolcreaterole, rolcreatedb from pg_roles "
        "where rolname = %s",
        role,
    )
    assert flags == [(False, False, False, False)]


def test_app_role_has_only_dml_on_tables(
    catalog: psycopg.Connection, db_urls: TestDatabase
) -> None:
    """TRUNCATE ignores RLS; TRIGGER and REFERENCES would let the role reach other rows."""
    rows = _rows(
        catalog,
        "select c.relname, p.priv from pg_class c "
        "cross join unnest(array['TRUNCATE', 'TRIGGER', 'REFERENCES']) p(priv) "
        "where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p') "
        "and has_table_privilege(%s, c.oid, p.priv)",
        db_urls.app_role,
    )
    assert rows == []
    create = _rows(catalog, "select has_schema_privilege(%s, 'public', 'CREATE')", db_urls.app_role)
    assert create == [(False,)], "the app role must not create objects in the schema"


def test_security_definer_functions_are_narrow(catalog: psycopg.Connection) -> None:
    rows = _rows(
        catalog,
        "select p.proname, p.proconfig, "
        "exists (select 1 from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a "
        "        where a.grantee = 0 and a.privilege_type = 'EXECUTE') "
        "from pg_proc p where p.prosecdef and p.pronamespace = 'public'::regnamespace",
    )
    assert any(name == "iiot_user_memberships" for name, _, _ in rows)
    unpinned = [
        name
        for name, config, _ in rows
        if not any(c.startswith("search_path=") and "pg_temp" in c for c in config or [])
    ]
    public = [name for name, _, executable in rows if executable]
    assert unpinned == [], f"SECURITY DEFINER without a pinned search_path: {unpinned}"
    assert public == [], f"SECURITY DEFINER executable by PUBLIC: {public}"


def test_models_match_the_migrated_database(db_urls: TestDatabase) -> None:
    """Alembic autogenerate finds nothing to do: the migrations and the models agree."""
    engine = create_engine(db_urls.admin_url)
    try:
        with engine.connect() as conn:
            partitions = {r[0] for r in conn.exec_driver_sql(PARTITIONS_SQL).fetchall()}

            def include_name(name: str | None, type_: str, parent: Any) -> bool:
                # Partitions are made by functions at run time; the models know the parent only.
                return not (type_ == "table" and name in partitions)

            context = MigrationContext.configure(
                conn,
                opts={
                    "compare_type": True,
                    "compare_server_default": True,
                    "include_name": include_name,
                },
            )
            diff = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations disagree: {diff}"
