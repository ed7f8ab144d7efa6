"""A deleted device's points disappear at once from reads and are deleted by the job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from iiot.models.devices import Device
from iiot.runtime import Runtime
from iiot.telemetry import removed
from iiot.tenancy.context import system_context
from tests.fixtures.factories import World
from tests.telemetry.test_query import seed_device, seed_points


async def _count(owner: AsyncEngine, sql: str) -> int:
    async with owner.connect() as conn:
        return int((await conn.execute(text(sql))).scalar_one())


async def test_points_of_a_deleted_device_are_deleted_by_partition(
    runtime: Runtime, world: World, owner_engine: AsyncEngine
) -> None:
    now = datetime.now(UTC)
    tenant = world.tenant_a.id
    gone = await seed_device(runtime, tenant, "Gone")
    kept = await seed_device(runtime, tenant, "Kept")
    # Today, two days ago (partitions) and 60 days ago (DEFAULT).
    stamps = [now - timedelta(days=d, minutes=m) for d in (0, 2, 60) for m in range(3)]
    for device in (gone, kept):
        await seed_points(runtime, tenant, device, [("t", ts, 1.0) for ts in stamps])
        await seed_points(runtime, tenant, device, [("p", ts, 2.0) for ts in stamps])
    ctx = system_context(tenant)
    async with runtime.db.tenant(ctx) as session:
        device = await session.get(Device, (tenant, gone))
        assert device is not None
        await session.delete(device)

    assert await _count(owner_engine, "select count(*) from telemetry_series_removed") == 2
    assert await _count(owner_engine, "select count(*) from telemetry") == 36
    deleted = await removed.delete_removed_series(runtime, batch=2)
    assert deleted == 18
    assert await _count(owner_engine, "select count(*) from telemetry") == 18
    assert await _count(owner_engine, "select count(*) from telemetry_series_removed") == 0
    assert (
        await _count(
            owner_engine,
            "select count(*) from telemetry t join telemetry_series s "
            f"on s.tenant_id = t.tenant_id and s.id = t.series_id where s.device_id = '{kept}'",
        )
        == 18
    )


async def test_a_device_recreated_under_the_same_id_gets_new_series(
    runtime: Runtime, world: World, owner_engine: AsyncEngine
) -> None:
    """The writer's cached series ids of a deleted device are detected as stale."""
    tenant = world.tenant_a.id
    device_id = await seed_device(runtime, tenant, "Reborn")
    op = world.a["operator"].client
    body = {"device_id": str(device_id), "telemetry": {"t": 1.0}}
    r = await op.post("/api/v1/telemetry", json=body)
    assert r.status_code == 201
    ctx = system_context(tenant)
    async with runtime.db.tenant(ctx) as session:
        device = await session.get(Device, (tenant, device_id))
        assert device is not None
        await session.delete(device)
    async with runtime.db.tenant(ctx) as session:
        session.add(Device(tenant_id=tenant, id=device_id, name="Reborn"))
    r = await op.post("/api/v1/telemetry", json={**body, "telemetry": {"t": 2.0}})
    assert r.status_code == 201, r.text
    assert r.json() == {"points": 1, "duplicates": 0}
    r = await world.a["viewer"].client.get(f"/api/v1/devices/{device_id}")
    assert r.status_code == 200
    assert r.json()["latest_telemetry"]["t"]["value"] == 2.0
