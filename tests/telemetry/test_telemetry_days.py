"""`telemetry_days`: the days holding each tenant's points, kept by triggers (migration 0016),
and the quotas' `oldest_data_age_days` read from it, through writes, deletes and retention."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from iiot.models.devices import Device
from iiot.quotas import usage
from iiot.runtime import Runtime
from iiot.telemetry import removed, retention
from iiot.telemetry.partitions import keeper
from iiot.tenancy.context import system_context
from tests.devices.support import make_device
from tests.fixtures.factories import Factory, World
from tests.telemetry.test_query import seed_device, seed_points
from tests.telemetry.test_retention import ensure_partition

NOW = datetime.now(UTC).replace(microsecond=0)
TODAY = NOW.date()


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


async def listed(owner: AsyncEngine, tenant_id: uuid.UUID) -> set[date]:
    async with owner.connect() as conn:
        rows = await conn.execute(
            text("select day from telemetry_days where tenant_id = :t"), {"t": tenant_id}
        )
        return {r.day for r in rows}


async def stored_days(owner: AsyncEngine, tenant_id: uuid.UUID) -> set[date]:
    async with owner.connect() as conn:
        rows = await conn.execute(
            text(
                "select distinct (ts at time zone 'UTC')::date as day from telemetry"
                " where tenant_id = :t"
            ),
            {"t": tenant_id},
        )
        return {r.day for r in rows}


async def oldest_age(rt: Runtime, tenant_id: uuid.UUID) -> int | None:
    ctx = system_context(tenant_id)
    async with rt.db.tenant(ctx) as session:
        figures = await usage.collect(rt.wiring.usage_providers, session, ctx)
    value = figures["oldest_data_age_days"]
    return None if value is None else int(value)


async def delete_device(rt: Runtime, tenant_id: uuid.UUID, device_id: uuid.UUID) -> None:
    ctx = system_context(tenant_id)
    async with rt.db.tenant(ctx) as session:
        device = await session.get(Device, (tenant_id, device_id))
        assert device is not None
        await session.delete(device)


async def test_writes_list_each_day_once_per_tenant(
    runtime: Runtime, world: World, factory: Factory, owner_engine: AsyncEngine
) -> None:
    a, b = world.tenant_a.id, world.tenant_b.id
    a_dev, b_dev = await seed_device(runtime, a), await seed_device(runtime, b)
    assert await listed(owner_engine, a) == set()
    await seed_points(runtime, a, a_dev, [("t", ago(0), 1), ("t", ago(2), 1), ("u", ago(2), 2)])
    await seed_points(runtime, a, a_dev, [("t", ago(2) + timedelta(seconds=1), 3)])
    await seed_points(runtime, b, b_dev, [("t", ago(5), 1)])
    assert await listed(owner_engine, a) == {TODAY, ago(2).date()}
    assert await listed(owner_engine, b) == {ago(5).date()}
    assert await oldest_age(runtime, a) == 2
    assert await oldest_age(runtime, b) == 5
    # Through the ingest API too (the statement of the device writer), twice the same day.
    dev = await make_device(factory, world.a["developer"])
    for seconds in (0, 1):
        ts = int((ago(4) + timedelta(seconds=seconds)).timestamp() * 1000)
        r = await dev.client.post(
            "/api/v1/telemetry", json={"points": [{"ts": ts, "values": {"x": 1}}]}
        )
        assert r.status_code == 201, r.text
    assert await listed(owner_engine, a) == {TODAY, ago(2).date(), ago(4).date()}
    assert await oldest_age(runtime, a) == 4


async def test_a_deleted_devices_points_unlist_only_the_days_left_empty(
    runtime: Runtime, world: World, owner_engine: AsyncEngine
) -> None:
    tenant = world.tenant_a.id
    gone = await seed_device(runtime, tenant, "Gone")
    kept = await seed_device(runtime, tenant, "Kept")
    # `gone` alone holds the oldest two days; both hold today.
    await seed_points(runtime, tenant, gone, [("t", ago(d), 1.0) for d in (0, 3, 5)])
    await seed_points(runtime, tenant, kept, [("t", ago(d), 1.0) for d in (0, 1)])
    assert await oldest_age(runtime, tenant) == 5
    await delete_device(runtime, tenant, gone)
    # The points stay (and are listed) until the job deletes them.
    assert await listed(owner_engine, tenant) == {
        TODAY,
        ago(1).date(),
        ago(3).date(),
        ago(5).date(),
    }
    await removed.delete_removed_series(runtime, batch=1)
    assert await listed(owner_engine, tenant) == {TODAY, ago(1).date()}
    assert await listed(owner_engine, tenant) == await stored_days(owner_engine, tenant)
    assert await oldest_age(runtime, tenant) == 1
    await delete_device(runtime, tenant, kept)
    await removed.delete_removed_series(runtime, batch=10)
    assert await listed(owner_engine, tenant) == set()
    assert await oldest_age(runtime, tenant) is None


async def test_a_day_stays_listed_while_one_point_of_it_remains(
    runtime: Runtime, world: World, owner_engine: AsyncEngine
) -> None:
    tenant = world.tenant_a.id
    dev = await seed_device(runtime, tenant)
    await seed_points(
        runtime, tenant, dev, [("t", ago(3), 1.0), ("t", ago(3) + timedelta(seconds=1), 2.0)]
    )
    ctx = system_context(tenant)
    async with runtime.db.tenant(ctx) as session:
        await session.execute(
            text("delete from telemetry where tenant_id = :t and ts = :ts"),
            {"t": tenant, "ts": ago(3)},
        )
    assert await listed(owner_engine, tenant) == {ago(3).date()}
    async with runtime.db.tenant(ctx) as session:
        await session.execute(text("delete from telemetry where tenant_id = :t"), {"t": tenant})
    assert await listed(owner_engine, tenant) == set()


async def test_retention_unlists_deleted_and_dropped_days(
    runtime: Runtime, world: World, factory: Factory, owner_engine: AsyncEngine
) -> None:
    old_partition = await ensure_partition(runtime, ago(120))
    keeper(runtime).forget(ago(120).date())
    await keeper(runtime).ensure(runtime, ago(120).date(), ago(120).date())
    short = await factory.tenant(name="Short window", max_retention_days=5)
    a = world.tenant_a.id  # professional tier: 90 days
    a_dev, s_dev = await seed_device(runtime, a), await seed_device(runtime, short.id)
    await seed_points(runtime, a, a_dev, [("t", ts, 1) for ts in (ago(120), ago(95), ago(1))])
    await seed_points(
        runtime, short.id, s_dev, [("t", ts, 1) for ts in (ago(120), ago(6), ago(4), ago(0))]
    )
    assert ago(120).date() in await listed(owner_engine, a)

    report = await retention.enforce_retention(runtime, now=NOW)

    assert report.dropped_partitions == [old_partition]
    assert await listed(owner_engine, a) == {ago(1).date()} == await stored_days(owner_engine, a)
    assert await listed(owner_engine, short.id) == {ago(4).date(), TODAY}
    assert await oldest_age(runtime, a) == 1
    assert await oldest_age(runtime, short.id) == 4


async def test_tenants_do_not_see_each_others_days(runtime: Runtime, world: World) -> None:
    a, b = world.tenant_a.id, world.tenant_b.id
    await seed_points(runtime, b, await seed_device(runtime, b), [("t", ago(6), 1)])
    async with runtime.db.tenant(system_context(a)) as session:
        seen = (await session.execute(text("select count(*) from telemetry_days"))).scalar_one()
    assert seen == 0
    assert await oldest_age(runtime, a) is None
    assert await oldest_age(runtime, b) == 6


async def test_a_delete_waits_for_a_concurrent_write_of_the_same_day(
    runtime: Runtime, world: World, owner_engine: AsyncEngine
) -> None:
    """The delete's check must see a point written to the same day by a transaction still
    open when the delete ran: it waits for that transaction (the triggers' tenant lock)."""
    tenant = world.tenant_a.id
    dev = await seed_device(runtime, tenant)
    day = ago(2)
    await seed_points(runtime, tenant, dev, [("t", day, 1.0)])
    ctx = system_context(tenant)
    async with runtime.db.tenant(ctx) as session:
        series = (
            await session.execute(
                text("select id from telemetry_series where tenant_id = :t"), {"t": tenant}
            )
        ).scalar_one()
    deleted = asyncio.Event()

    async def delete_the_old_point() -> None:
        async with runtime.db.tenant(ctx) as session:
            await session.execute(
                text("delete from telemetry where tenant_id = :t and ts = :ts"),
                {"t": tenant, "ts": day},
            )
        deleted.set()

    async with runtime.db.tenant(ctx) as writer:
        await writer.execute(
            text(
                "insert into telemetry (tenant_id, series_id, ts, value_num)"
                " values (:t, :s, :ts, 2.0)"
            ),
            {"t": tenant, "s": series, "ts": day + timedelta(seconds=1)},
        )
        task = asyncio.create_task(delete_the_old_point())
        await asyncio.sleep(0.5)
        assert not deleted.is_set()  # waiting for the writer's transaction
    await asyncio.wait_for(task, 10)
    assert await stored_days(owner_engine, tenant) == {day.date()}
    assert await listed(owner_engine, tenant) == {day.date()}
    assert await oldest_age(runtime, tenant) == 2


async def test_a_day_stored_in_default_does_not_count_as_before(
    runtime: Runtime, factory: Factory, owner_engine: AsyncEngine
) -> None:
    """Days without a daily partition (their points are in DEFAULT) are listed but skipped:
    the figure still counts only days with their own partition."""
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("update tiers set max_retention_days = null where name = 'enterprise'")
        )
    forever = await factory.tenant(name="Forever", tier="enterprise")
    dev = await seed_device(runtime, forever.id)
    await seed_points(runtime, forever.id, dev, [("t", ago(450), 1), ("t", ago(449), 1)])
    assert await listed(owner_engine, forever.id) == {ago(450).date(), ago(449).date()}
    assert await oldest_age(runtime, forever.id) is None
    await seed_points(runtime, forever.id, dev, [("t", ago(3), 1)])
    assert await oldest_age(runtime, forever.id) == 3
