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
