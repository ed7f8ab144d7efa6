"""The per-test cleanup: whatever a test writes is gone afterwards, the tiers are as seeded."""

from __future__ import annotations

import uuid

import psycopg
from psycopg import sql

from tests.fixtures.database import Cleaner, TestDatabase
from tests.fixtures.tenant_tables import PARTITIONS_SQL, owner_conninfo, seed_tenant_rows

_TABLES = """
select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = 'public' and c.relkind = 'r' and c.relname not in ('alembic_version', 'tiers')
"""


def _rows(url: str) -> tuple[dict[str, int], list[tuple[object, ...]]]:
    with psycopg.connect(owner_conninfo(url)) as conn:
        counts = {
            t: conn.execute(
                sql.SQL("select count(*) from {}").format(sql.Identifier(t))
            ).fetchone()[0]  # type: ignore[index]
            for (t,) in conn.execute(_TABLES).fetchall()
        }
        tiers = conn.execute("select * from tiers order by name").fetchall()
    return counts, tiers


async def test_cleanup_empties_every_table_and_restores_the_tiers(
    db_urls: TestDatabase, database_cleaner: Cleaner
) -> None:
    await database_cleaner.clean()  # reads the seed before this test changes it
    _, seeded_tiers = _rows(db_urls.admin_url)
    seeded = seed_tenant_rows(db_urls.admin_url, [uuid.uuid4()])
    with psycopg.connect(owner_conninfo(db_urls.admin_url)) as conn:
        conn.execute("update tiers set max_users = max_users + 1")
        conn.execute("delete from tiers where name = 'starter'")
    counts, tiers = _rows(db_urls.admin_url)
    written = {t for t, n in counts.items() if n}
    with psycopg.connect(owner_conninfo(db_urls.admin_url)) as conn:
        partitions = {r[0] for r in conn.execute(PARTITIONS_SQL).fetchall()}
    plain = set(seeded.tables) - partitions - set(seeded.failed) - {"telemetry"}
    assert plain <= written
    assert written & partitions  # the telemetry row sits in a partition
    assert tiers != seeded_tiers

    await database_cleaner.clean()

    counts, tiers = _rows(db_urls.admin_url)
    assert {t: n for t, n in counts.items() if n} == {}
    assert tiers == seeded_tiers


def _contents(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table but the seed's, sorted, by table."""
    with psycopg.connect(owner_conninfo(url)) as conn:
        return {
            t: sorted(
                conn.execute(sql.SQL("select * from {}").format(sql.Identifier(t))).fetchall(),
                key=repr,
            )
            for (t,) in conn.execute(_TABLES).fetchall()
        }


async def test_kept_rows_come_back_after_every_test_until_forgotten(
    db_urls: TestDatabase, database_cleaner: Cleaner
) -> None:
    """`keep()`: a row in every tenant-owned table (the partitioned telemetry too) comes back
    exactly as it was, whatever the test changed, added or removed; `forget()` and the
    tables are emptied again."""
    kept_tenant, other_tenant = uuid.uuid4(), uuid.uuid4()
    seed_tenant_rows(db_urls.admin_url, [kept_tenant])
    kept = _contents(db_urls.admin_url)
    fingerprint = await database_cleaner.fingerprint(kept_tenant)
    await database_cleaner.keep()
    try:
        seed_tenant_rows(db_urls.admin_url, [other_tenant])
        with psycopg.connect(owner_conninfo(db_urls.admin_url)) as conn:
            conn.execute("set session_replication_role = replica")
            conn.execute("update tenants set name = 'changed'")
            conn.execute("delete from devices")
        assert _contents(db_urls.admin_url) != kept
        assert await database_cleaner.fingerprint(kept_tenant) != fingerprint

        await database_cleaner.clean()

        assert _contents(db_urls.admin_url) == kept
        assert await database_cleaner.fingerprint(kept_tenant) == fingerprint
        await database_cleaner.clean()  # and again after a test that wrote nothing
        assert _contents(db_urls.admin_url) == kept
    finally:
        await database_cleaner.forget()
    await database_cleaner.clean()
    counts, _ = _rows(db_urls.admin_url)
    assert {t: n for t, n in counts.items() if n} == {}
