"""Retention: each tenant loses exactly its expired points; whole partitions go when all allow."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from iiot.jobs import scheduler
from iiot.quotas import usage
from iiot.runtime import Runtime
from iiot.telemetry import retention
from iiot.telemetry.partitions import keeper
from iiot.tenancy.context import system_context
from tests.fixtures.factories import Factory, World
from tests.telemetry.test_query import seed_device, seed_points

NOW = datetime.now(UTC).replace(microsecond=0)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


async def ensure_partition(rt: Runtime, day: datetime) -> str:
    async with rt.db.system() as session:
        await session.execute(text("select iiot_ensure_telemetry_partition(:d)"), {"d": day.date()})
    return f"telemetry_p{day:%Y%m%d}"


async def stored(owner: AsyncEngine, tenant_id: uuid.UUID) -> set[datetime]:
    async with owner.connect() as conn:
        rows = await conn.execute(
            text("select ts from telemetry where tenant_id = :t"), {"t": tenant_id}
        )
        return {r.ts for r in rows}


async def partitions(owner: AsyncEngine) -> set[str]:
    async with owner.connect() as conn:
        rows = await conn.execute(
            text(
                "select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid "
                "where i.inhparent = 'telemetry'::regclass"
            )
        )
        return {r.relname for r in rows}


async def test_each_tenant_keeps_exactly_its_window(
    runtime: Runtime, world: World, factory: Factory, owner_engine: AsyncEngine
) -> None:
    old_partition = await ensure_partition(runtime, ago(120))
    keeper(runtime).forget(ago(120).date())
    await keeper(runtime).ensure(runtime, ago(120).date(), ago(120).date())
    short = await factory.tenant(name="Short window", max_retention_days=10)
    starter = await factory.tenant(name="Starter", tier="starter")  # 30 days from its tier
    a, b = world.tenant_a.id, world.tenant_b.id  # professional tier: 90 days
    plan = {
        a: ([ago(120), ago(95)], [ago(89), ago(50), ago(1), NOW]),
        b: ([ago(91)], [ago(88)]),
        short.id: ([ago(120), ago(50), ago(11), ago(10.01)], [ago(9.99), ago(9), ago(0.5)]),
        starter.id: ([ago(31), ago(45)], [ago(29)]),
    }
    for tenant_id, (expired, kept) in plan.items():
        dev = await seed_device(runtime, tenant_id)
        await seed_points(runtime, tenant_id, dev, [("temp", ts, 1) for ts in expired + kept])
        await seed_points(runtime, tenant_id, dev, [("state", ts, "ON") for ts in expired + kept])

    report = await retention.enforce_retention(runtime, now=NOW, batch=3)

    assert report.dropped_partitions == [old_partition]
    assert ago(120).date() not in keeper(runtime)._settled
    assert old_partition not in await partitions(owner_engine)
    for tenant_id, (_expired, kept) in plan.items():
        assert await stored(owner_engine, tenant_id) == set(kept), tenant_id
    # The points in the dropped partition were not counted as deleted rows.
    assert report.deleted_by_tenant == {a: 2, b: 2, short.id: 6, starter.id: 4}

    again = await retention.enforce_retention(runtime, now=NOW, batch=3)
    assert (again.dropped_partitions, again.deleted) == ([], 0)


async def test_an_unlimited_tenant_keeps_old_partitions(
    runtime: Runtime, world: World, factory: Factory, owner_engine: AsyncEngine
) -> None:
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("update tiers set max_retention_days = null where name = 'enterprise'")
        )
    forever = await factory.tenant(name="Forever", tier="enterprise")
    old_partition = await ensure_partition(runtime, ago(400))
    forever_dev = await seed_device(runtime, forever.id)
    a_dev = await seed_device(runtime, world.tenant_a.id)
    await seed_points(runtime, forever.id, forever_dev, [("temp", ago(400), 1)])
    await seed_points(runtime, world.tenant_a.id, a_dev, [("temp", ago(400), 1), ("temp", NOW, 2)])

    report = await retention.enforce_retention(runtime, now=NOW)

    assert report.dropped_partitions == []
    assert old_partition in await partitions(owner_engine)
    assert await stored(owner_engine, forever.id) == {ago(400)}
    assert await stored(owner_engine, world.tenant_a.id) == {NOW}
    async with owner_engine.begin() as conn:  # leave no stray partition to later tests
        await conn.execute(text(f"drop table {old_partition}"))


async def test_the_app_role_cannot_drop_partitions_itself(runtime: Runtime, world: World) -> None:
    name = await ensure_partition(runtime, NOW)
    async with runtime.db.system() as session:
        refused = False
        try:
            async with session.begin_nested():
                await session.execute(text(f"drop table {name}"))
        except Exception as exc:  # the database refuses: the app role owns no table
            refused = "must be owner" in str(exc)
        assert refused
        # The owner's function drops nothing that any tenant may still keep.
        dropped = (
            (await session.execute(text("select * from iiot_drop_expired_telemetry_partitions()")))
            .scalars()
            .all()
        )
        assert name not in dropped
        cutoff = f"telemetry_p{ago(90):%Y%m%d}"
        assert all(d < cutoff for d in dropped)  # only days past every tenant's window


async def test_job_is_registered_and_runs_through_the_scheduler(
    runtime: Runtime, world: World, owner_engine: AsyncEngine
) -> None:
    dev = await seed_device(runtime, world.tenant_a.id)
    await seed_points(runtime, world.tenant_a.id, dev, [("temp", ago(91), 1), ("temp", ago(1), 2)])
    job = next(j for j in runtime.wiring.jobs if j.name == retention.JOB_NAME)
    assert await scheduler.run_once(runtime, job)
    assert await stored(owner_engine, world.tenant_a.id) == {ago(1)}


async def test_oldest_data_age_days(runtime: Runtime, world: World) -> None:
    dev = await seed_device(runtime, world.tenant_a.id)
    ctx = system_context(world.tenant_a.id)
    async with runtime.db.tenant(ctx) as session:
        assert (await usage.collect(runtime.wiring.usage_providers, session, ctx))[
            "oldest_data_age_days"
        ] is None
    # The migration keeps daily partitions for the last week; the oldest one with data counts.
    await seed_points(runtime, world.tenant_a.id, dev, [("temp", ago(0), 1), ("temp", ago(3), 1)])
    b_dev = await seed_device(runtime, world.tenant_b.id)
    await seed_points(runtime, world.tenant_b.id, b_dev, [("temp", ago(6), 1)])
    async with runtime.db.tenant(ctx) as session:
        figures = await usage.collect(runtime.wiring.usage_providers, session, ctx)
    assert figures["oldest_data_age_days"] == (NOW.date() - ago(3).date()).days


async def test_oldest_data_age_looks_only_inside_the_window(
    runtime: Runtime, factory: Factory
) -> None:
    tenant = await factory.tenant(name="Four days", max_retention_days=4)
    dev = await seed_device(runtime, tenant.id)
    # The 6-day-old point has expired but the job has not run yet: it is not reported.
    await seed_points(runtime, tenant.id, dev, [("temp", ago(6), 1), ("temp", ago(3), 1)])
    ctx = system_context(tenant.id)
    async with runtime.db.tenant(ctx) as session:
        figures = await usage.collect(runtime.wiring.usage_providers, session, ctx)
    assert figures["oldest_data_age_days"] == (NOW.date() - ago(3).date()).days


async def test_oldest_data_age_counts_the_window_edge_and_not_tomorrow(
    runtime: Runtime, factory: Factory
) -> None:
    tenant = await factory.tenant(name="Edge", max_retention_days=4)
    dev = await seed_device(runtime, tenant.id)
    ctx = system_context(tenant.id)
    # Only a point of tomorrow's partition: no stored day up to today.
    await seed_points(runtime, tenant.id, dev, [("temp", ago(-1), 1)])
    async with runtime.db.tenant(ctx) as session:
        figures = await usage.collect(runtime.wiring.usage_providers, session, ctx)
    assert figures["oldest_data_age_days"] is None
    # The oldest day inside the window (today - 4) counts; days before it hold no point.
    await seed_points(runtime, tenant.id, dev, [("temp", ago(1), 1)])
    edge = datetime.combine(NOW.date() - timedelta(days=4), time(12), tzinfo=UTC)
    await seed_points(runtime, tenant.id, dev, [("temp", edge, 1)])
    async with runtime.db.tenant(ctx) as session:
        figures = await usage.collect(runtime.wiring.usage_providers, session, ctx)
    assert figures["oldest_data_age_days"] == 4
