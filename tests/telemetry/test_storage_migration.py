"""Migration 0013 moves every point of the wide layout into the series dictionary layout."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
from sqlalchemy.engine import make_url

from iiot.db import migrate, setup
from iiot.db.setup import plain_url
from tests.fixtures.database import TestDatabase

WIDE = (
    "select tenant_id, device_id, key, ts, value_num, value_bool, value_str, unit, quality "
    "from telemetry order by 1, 2, 3, 4"
)
NARROW = (
    "select t.tenant_id, s.device_id, s.key, t.ts, t.value_num, t.value_bool, t.value_str, "
    "t.unit, t.quality from telemetry t "
    "join telemetry_series s on s.tenant_id = t.tenant_id and s.id = t.series_id "
    "order by 1, 2, 3, 4"
)


def test_migration_keeps_every_point(db_urls: TestDatabase) -> None:
    server = make_url(db_urls.admin_url).set(database="postgres").render_as_string(False)
    suffix = secrets.token_hex(4)
    name, role = f"iiot_mig_{suffix}", f"iiot_mig_app_{suffix}"
    setup.ensure_database(server, name)
    admin = make_url(server).set(database=name).render_as_string(False)
    try:
        setup.ensure_app_role(admin, role, secrets.token_hex(8))
        migrate.upgrade(admin, role, "0005")
        now = datetime.now(UTC).replace(microsecond=0)
        tenants = [uuid.uuid4(), uuid.uuid4()]
        with psycopg.connect(plain_url(admin)) as conn:
            for n, tenant in enumerate(tenants):
                conn.execute(
                    "insert into tenants (id, name, slug, tier, status) "
                    "values (%s, %s, %s, (select min(name) from tiers), 'active')",
                    (tenant, f"T{n}", f"t-{n}-{suffix}"),
                )
                for _ in range(2):
                    device = uuid.uuid4()
                    conn.execute(
                        "insert into devices (tenant_id, id, name) values (%s, %s, 'd')",
                        (tenant, device),
                    )
                    # Today, a day with a partition, and 40 days ago (the DEFAULT partition).
                    for days in (0, 3, 40):
                        for i in range(5):
                            ts = now - timedelta(days=days, seconds=i)
                            conn.execute(
                                "insert into telemetry (tenant_id, device_id, key, ts, "
                                "value_num, value_bool, value_str, unit, quality) "
                                "values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                                (tenant, device, "temp", ts, 20.5 + i, None, None, "C", "good"),
                            )
                            conn.execute(
                                "insert into telemetry (tenant_id, device_id, key, ts, "
                                "value_str, value_bool) values (%s, %s, %s, %s, %s, %s)",
                                (tenant, device, "state", ts, "RUN" if i % 2 else None, i == 1),
                            )
            conn.commit()
            before = conn.execute(WIDE).fetchall()
        assert len(before) == 2 * 2 * 3 * 5 * 2
        migrate.upgrade(admin, role)
        with psycopg.connect(plain_url(admin)) as conn:
            after = conn.execute(NARROW).fetchall()
            series = conn.execute("select count(*) from telemetry_series").fetchone()
            old = conn.execute("select to_regclass('telemetry_wide')").fetchone()
            where = conn.execute(
                "select tableoid::regclass::text, count(*) from telemetry group by 1 order by 1"
            ).fetchall()
            # Migration 0016 lists the days holding each tenant's points (DEFAULT's included).
            days = conn.execute(
                "select tenant_id, day from telemetry_days order by 1, 2"
            ).fetchall()
            stored_days = conn.execute(
                "select distinct tenant_id, (ts at time zone 'UTC')::date from telemetry"
                " order by 1, 2"
            ).fetchall()
        assert after == before
        assert series == (2 * 2 * 2,)
        assert old == (None,)
        # 40 days ago had no partition: DEFAULT; the other days are in their day's partition.
        parts = dict(where)
        assert parts.pop("telemetry_default") == 2 * 2 * 5 * 2
        assert sum(parts.values()) == 2 * 2 * 2 * 5 * 2
        assert all(p.startswith("telemetry_p") for p in parts)
        assert days == stored_days
        assert len(days) >= 2 * 3
    finally:
        setup.drop_database(server, name)
        setup.drop_role(server, role)
