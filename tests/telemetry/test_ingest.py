"""Telemetry ingest: forms, types, duplicates, timestamps, who may write which device."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from iiot.devices import presence
from iiot.quotas import usage
from iiot.tenancy.context import system_context
from tests.devices.support import make_device
from tests.fixtures.factories import Factory, World


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def rows(engine: AsyncEngine, device_id: uuid.UUID) -> list[tuple[object, ...]]:
    async with engine.connect() as conn:
        result = await conn.execute(
            text(
                "select s.key, t.ts, t.value_num, t.value_bool, t.value_str, t.unit, t.quality "
                "from telemetry t join telemetry_series s "
                "on s.tenant_id = t.tenant_id and s.id = t.series_id "
                "where s.device_id = :d order by s.key, t.ts"
            ),
            {"d": device_id},
        )
        return [tuple(r) for r in result]


async def test_single_message_with_mixed_types_units_and_quality(
    factory: Factory, world: World, owner_engine: AsyncEngine
) -> None:
    dev = await make_device(factory, world.a["developer"])
    ts = datetime.now(UTC).replace(microsecond=123000) - timedelta(minutes=1)
    r = await dev.client.post(
        "/api/v1/telemetry",
        json={
            "timestamp": iso(ts),
            "telemetry": {
                "temperature": {"value": 21.5, "unit": "C", "quality": "good"},
                "count": 7,
                "running": True,
                "state": "RUNNING",
            },
        },
    )
    assert r.status_code == 201, r.text
    assert r.json() == {"points": 4, "duplicates": 0}
    assert await rows(owner_engine, dev.id) == [
        ("count", ts, 7.0, None, None, None, None),
        ("running", ts, None, True, None, None, None),
        ("state", ts, None, None, "RUNNING", None, None),
        ("temperature", ts, 21.5, None, None, "C", "good"),
    ]
    got = (await world.a["viewer"].client.get(f"/api/v1/devices/{dev.id}")).json()
    assert got["latest_telemetry"]["temperature"]["value"] == 21.5
    assert got["latest_telemetry"]["temperature"]["unit"] == "C"
    assert got["latest_telemetry"]["running"]["value"] is True
    assert got["latest_telemetry"]["state"]["value"] == "RUNNING"
    assert got["status"] == "online"


async def test_batch_with_epoch_ms_out_of_order_and_duplicates(
    factory: Factory, world: World, owner_engine: AsyncEngine
) -> None:
    dev = await make_device(factory, world.a["developer"])
    base = int((datetime.now(UTC) - timedelta(hours=1)).timestamp() * 1000)
    # Newest first, then older: order of arrival does not matter.
    points = [
        {"ts": base - i * 1000, "values": {"p": float(i), "q": i % 2 == 0}} for i in range(50)
    ]
    r = await dev.client.post("/api/v1/telemetry", json={"points": points})
    assert r.status_code == 201, r.text
    assert r.json() == {"points": 100, "duplicates": 0}
    # A client retry of part of the batch plus new points: only the new ones are stored.
    retry = points[:20] + [{"ts": base + 1000, "values": {"p": -1.0}}]
    r = await dev.client.post("/api/v1/telemetry", json={"points": retry})
    assert r.status_code == 201, r.text
    assert r.json() == {"points": 1, "duplicates": 40}
    # The same point twice in one batch is stored once.
    twice = [{"ts": base + 2000, "values": {"p": 1}}, {"ts": base + 2000, "values": {"p": 2}}]
    r = await dev.client.post("/api/v1/telemetry", json={"points": twice})
    assert r.json() == {"points": 1, "duplicates": 1}
    stored = await rows(owner_engine, dev.id)
    assert len(stored) == 102
    latest = (await world.a["viewer"].client.get(f"/api/v1/devices/{dev.id}")).json()
    assert latest["latest_telemetry"]["p"]["value"] == 1.0
    assert latest["latest_telemetry"]["q"]["value"] is True
    ctx = system_context(world.tenant_a.id)
    async with factory.rt.db.tenant(ctx) as session:
        figures = await usage.collect(factory.rt.wiring.usage_providers, session, ctx)
    assert figures["telemetry_points_today"] == 102


async def test_large_batch_with_stored_points_is_written_again_counting_duplicates(
    factory: Factory, world: World, owner_engine: AsyncEngine
) -> None:
    """A batch too large for the group write is first inserted as all new; a point already
    stored (or twice in the batch) rolls that back and the batch is written again counting
    duplicates, with the series it created in the rolled-back attempt created again."""
    dev = await make_device(factory, world.a["developer"])
    base = int((datetime.now(UTC) - timedelta(hours=1)).timestamp() * 1000)

    def batch(first: int, count: int, key: str = "v") -> list[dict[str, object]]:
        return [
            {"ts": base + i * 1000, "values": {key: float(i)}} for i in range(first, first + count)
        ]

    # A new device's first batch, one point twice: its series come from the second attempt.
    twice = batch(0, 100, "fresh") + batch(50, 1, "fresh")
    r = await dev.client.post("/api/v1/telemetry", json={"points": twice})
    assert r.status_code == 201, r.text
    assert r.json() == {"points": 100, "duplicates": 1}
    r = await dev.client.post("/api/v1/telemetry", json={"points": batch(0, 100)})
    assert r.json() == {"points": 100, "duplicates": 0}
    # Half stored, half new; then all stored (the device is remembered as re-sending).
    r = await dev.client.post("/api/v1/telemetry", json={"points": batch(50, 100)})
    assert r.status_code == 201, r.text
    assert r.json() == {"points": 50, "duplicates": 50}
    r = await dev.client.post("/api/v1/telemetry", json={"points": batch(0, 150)})
    assert r.json() == {"points": 0, "duplicates": 150}
    stored = await rows(owner_engine, dev.id)
    assert [(k, v) for k, _, v, *_ in stored] == [("fresh", float(i)) for i in range(100)] + [
        ("v", float(i)) for i in range(150)
    ]
    ctx = system_context(world.tenant_a.id)
    async with factory.rt.db.tenant(ctx) as session:
        figures = await usage.collect(factory.rt.wiring.usage_providers, session, ctx)
    assert figures["telemetry_points_today"] == 250


async def test_timestamp_absent_means_server_time(
    factory: Factory, world: World, owner_engine: AsyncEngine
) -> None:
    dev = await make_device(factory, world.a["developer"])
    before = datetime.now(UTC)
    r = await dev.client.post("/api/v1/telemetry", json={"points": [{"values": {"a": 1}}]})
    assert r.status_code == 201
    after = datetime.now(UTC)
    (row,) = await rows(owner_engine, dev.id)
    assert before <= row[1] <= after  # type: ignore[operator]


async def test_rfc3339_offsets_are_normalised(
    factory: Factory, world: World, owner_engine: AsyncEngine
) -> None:
    dev = await make_device(factory, world.a["developer"])
    ts = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)
    local = ts.astimezone(datetime.now(UTC).astimezone().tzinfo).isoformat()
    plus = (ts + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S") + "+02:00"
    r = await dev.client.post(
        "/api/v1/telemetry",
        json={"points": [{"ts": local, "values": {"a": 1}}, {"ts": plus, "values": {"a": 2}}]},
    )
    assert r.status_code == 201, r.text
    assert r.json() == {"points": 1, "duplicates": 1}
    (row,) = await rows(owner_engine, dev.id)
    assert row[1] == ts


async def test_operator_writes_for_a_tenant_device(
    factory: Factory, world: World, owner_engine: AsyncEngine
) -> None:
    d1 = await make_device(factory, world.a["developer"])
    d2 = await make_device(factory, world.a["developer"])
    body = {
        "points": [
            {"device_id": str(d1.id), "values": {"x": 1}},
            {"device_id": str(d2.id), "values": {"x": 2}},
        ]
    }
    r = await world.a["operator"].client.post("/api/v1/telemetry", json=body)
    assert r.status_code == 201, r.text
    single = {"device_id": str(d1.id), "telemetry": {"y": 3}}
    assert (await world.a["admin"].client.post("/api/v1/telemetry", json=single)).status_code == 201
    assert len(await rows(owner_engine, d1.id)) == 2
    assert len(await rows(owner_engine, d2.id)) == 1
    viewer = await world.a["viewer"].client.post("/api/v1/telemetry", json=single)
    assert viewer.status_code == 403
    missing = await world.a["operator"].client.post(
        "/api/v1/telemetry", json={"telemetry": {"y": 1}}
    )
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "device_id"


async def test_device_token_writes_only_its_own_device(
    factory: Factory, world: World, owner_engine: AsyncEngine
) -> None:
    mine = await make_device(factory, world.a["developer"])
    other = await make_device(factory, world.a["developer"])
    r = await mine.client.post(
        "/api/v1/telemetry", json={"device_id": str(other.id), "telemetry": {"x": 1}}
    )
    assert r.status_code == 422, r.text
    assert "only its own device" in r.text
    same = await mine.client.post(
        "/api/v1/telemetry", json={"device_id": str(mine.id), "telemetry": {"x": 1}}
    )
    assert same.status_code == 201
    assert await rows(owner_engine, other.id) == []


async def test_another_tenants_device_is_not_found_and_nothing_is_written(
    factory: Factory, world: World, owner_engine: AsyncEngine
) -> None:
    theirs = await make_device(factory, world.b_admin, name="beta-line-9")
    mine = await make_device(factory, world.a["developer"])
    body = {
        "points": [
            {"device_id": str(mine.id), "values": {"x": 1}},
            {"device_id": str(theirs.id), "values": {"x": 2}},
        ]
    }
    r = await world.a["operator"].client.post("/api/v1/telemetry", json=body)
    assert r.status_code == 404, r.text
    assert r.json()["invalid_points"] == [1]
    assert "beta-line-9" not in r.text
    assert await rows(owner_engine, mine.id) == []
    assert await rows(owner_engine, theirs.id) == []
    # A token of tenant A's device naming B's device is refused too.
    r = await mine.client.post(
        "/api/v1/telemetry", json={"device_id": str(theirs.id), "telemetry": {"x": 1}}
    )
    assert r.status_code == 422
    assert await rows(owner_engine, theirs.id) == []
    unknown = await world.a["operator"].client.post(
        "/api/v1/telemetry", json={"device_id": str(uuid.uuid4()), "telemetry": {"x": 1}}
    )
    assert unknown.status_code == 404


async def test_partition_created_for_a_back_filled_day(
    factory: Factory, world: World, owner_engine: AsyncEngine
) -> None:
    dev = await make_device(factory, world.a["developer"])
    day = datetime.now(UTC) - timedelta(days=30)
    r = await dev.client.post(
        "/api/v1/telemetry", json={"timestamp": iso(day), "telemetry": {"old": 1}}
    )
    assert r.status_code == 201, r.text
    async with owner_engine.connect() as conn:
        where = (
            await conn.execute(
                text(
                    "select t.tableoid::regclass::text from telemetry t join telemetry_series s "
                    "on s.tenant_id = t.tenant_id and s.id = t.series_id where s.device_id = :d"
                ),
                {"d": dev.id},
            )
        ).scalar_one()
    assert where == f"telemetry_p{day:%Y%m%d}"


async def test_presence_flush_writes_last_seen(
    factory: Factory, world: World, owner_engine: AsyncEngine
) -> None:
    dev = await make_device(factory, world.a["developer"])
    assert (
        await dev.client.post("/api/v1/telemetry", json={"telemetry": {"a": 1}})
    ).status_code == 201
    updated = await presence.flush(factory.rt)
    assert updated >= 1
    async with owner_engine.connect() as conn:
        seen, status = (
            await conn.execute(
                text("select last_seen_at, status from devices where id = :d"), {"d": dev.id}
            )
        ).one()
    assert seen is not None
    assert status == "online"
    assert datetime.now(UTC) - seen < timedelta(minutes=1)


async def test_keys_and_strings_with_quotes_and_unicode_are_stored_exactly(
    factory: Factory, world: World, owner_engine: AsyncEngine
) -> None:
    dev = await make_device(factory, world.a["developer"])
    key = 'temp "inner" {a,b} \\ ünïcødé ☃'
    r = await dev.client.post(
        "/api/v1/telemetry",
        json={"telemetry": {key: 'it\'s "RUNNING", {ok}', "plain": {"value": 1, "unit": "°C"}}},
    )
    assert r.status_code == 201, r.text
    stored = await rows(owner_engine, dev.id)
    assert [(s[0], s[4], s[5]) for s in stored] == [
        ("plain", None, "°C"),
        (key, 'it\'s "RUNNING", {ok}', None),
    ]


async def test_partition_job_prepares_the_days_ahead(
    factory: Factory, owner_engine: AsyncEngine
) -> None:
    from iiot.jobs import scheduler
    from iiot.telemetry import partitions

    far = datetime.now(UTC).date() + timedelta(days=partitions.AHEAD_DAYS)
    async with owner_engine.begin() as conn:
        await conn.execute(text(f"drop table if exists telemetry_p{far:%Y%m%d}"))
    assert await scheduler.run_once(
        factory.rt, next(j for j in factory.rt.wiring.jobs if j.name == "telemetry-partitions")
    )
    async with owner_engine.connect() as conn:
        found = (
            await conn.execute(
                text("select to_regclass(:n)::text"), {"n": f"telemetry_p{far:%Y%m%d}"}
            )
        ).scalar_one()
    assert found == f"telemetry_p{far:%Y%m%d}"
