"""Devices: CRUD, filters, roles, seat quota, audit, cascade on delete."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from iiot.runtime import Runtime
from iiot.telemetry import removed
from tests.devices.support import make_device
from tests.fixtures.factories import Factory, World


async def _count(engine: AsyncEngine, sql: str, **params: object) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(sql), params)).scalar_one())


async def test_developer_creates_a_device_and_gets_its_token_once(
    factory: Factory, world: World, owner_engine: AsyncEngine
) -> None:
    r = await world.a["developer"].client.post(
        "/api/v1/devices",
        json={
            "name": "Press 4",
            "type": "press",
            "location": "Hall 2",
            "area": "stamping",
            "protocol": "mqtt",
            "config": {"interval_s": 5},
            "metadata": {"serial": "P4-001"},
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["token"].startswith("dt_")
    assert len(body["token"]) >= 43 + 3
    assert body["name"] == "Press 4"
    assert body["metadata"] == {"serial": "P4-001"}
    assert body["status"] == "offline"
    assert body["last_seen"] is None
    assert body["tenant_id"] == str(world.tenant_a.id)
    # Stored only as a digest: the token's text is nowhere in the table.
    async with owner_engine.connect() as conn:
        stored = (
            await conn.execute(
                text("select token_hash from device_credentials where device_id = :d"),
                {"d": body["id"]},
            )
        ).scalar_one()
    assert len(stored) == 32
    assert body["token"].encode() not in stored
    got = await world.a["viewer"].client.get(f"/api/v1/devices/{body['id']}")
    assert got.status_code == 200
    assert "token" not in got.json()
    assert got.json()["latest_telemetry"] == {}


@pytest.mark.parametrize("role", ["viewer", "operator"])
async def test_roles_below_developer_cannot_change_devices(
    factory: Factory, world: World, role: str
) -> None:
    dev = await make_device(factory, world.a["developer"])
    client = world.a[role].client
    assert (await client.post("/api/v1/devices", json={"name": "x"})).status_code == 403
    assert (await client.patch(f"/api/v1/devices/{dev.id}", json={"name": "y"})).status_code == 403
    assert (await client.put(f"/api/v1/devices/{dev.id}", json={"name": "y"})).status_code == 403
    assert (await client.delete(f"/api/v1/devices/{dev.id}")).status_code == 403
    assert (await client.post(f"/api/v1/devices/{dev.id}/credentials")).status_code == 403
    assert (await client.get(f"/api/v1/devices/{dev.id}")).status_code == 200
    assert (await client.get("/api/v1/devices")).status_code == 200


async def test_anonymous_is_refused(world: World) -> None:
    r = await world.anonymous.get("/api/v1/devices")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_list_filters_and_pages(factory: Factory, world: World) -> None:
    dev = world.a["developer"]
    a = await make_device(factory, dev, name="a", area="north", type="pump")
    b = await make_device(factory, dev, name="b", area="north", type="valve")
    c = await make_device(factory, dev, name="c", area="south", type="pump")
    await make_device(factory, dev, name="d", area="south", type="valve", status="disabled")
    assert (
        await a.client.post("/api/v1/telemetry", json={"telemetry": {"t": 1}})
    ).status_code == 201
    viewer = world.a["viewer"].client

    async def names(query: str) -> list[str]:
        r = await viewer.get(f"/api/v1/devices{query}")
        assert r.status_code == 200, r.text
        return [d["name"] for d in r.json()["devices"]]

    assert await names("") == ["a", "b", "c", "d"]
    assert await names("?area=north") == ["a", "b"]
    assert await names("?type=pump") == ["a", "c"]
    assert await names("?area=south&type=pump") == ["c"]
    assert await names("?status=disabled") == ["d"]
    assert await names("?status=offline") == ["b", "c"]
    # `a` sent a point moments ago; its last_seen is in memory until the flush job runs.
    from iiot.devices import presence

    await presence.flush(factory.rt)
    assert await names("?status=online") == ["a"]
    page = (await viewer.get("/api/v1/devices?limit=2&offset=1")).json()
    assert [d["name"] for d in page["devices"]] == ["b", "c"]
    assert page["total"] == 4
    assert page["limit"] == 2
    assert page["offset"] == 1
    bad = await viewer.get("/api/v1/devices?status=sleeping")
    assert bad.status_code == 422
    assert (await viewer.get("/api/v1/devices?limit=0")).status_code == 422
    del b, c


async def test_put_replaces_and_patch_changes_some_fields(
    factory: Factory, world: World, owner_engine: AsyncEngine
) -> None:
    dev = await make_device(
        factory, world.a["developer"], name="m1", area="north", metadata={"k": 1}
    )
    client = world.a["developer"].client
    r = await client.patch(f"/api/v1/devices/{dev.id}", json={"location": "Bay 3"})
    assert r.status_code == 200, r.text
    assert r.json()["location"] == "Bay 3"
    assert r.json()["area"] == "north"
    assert r.json()["metadata"] == {"k": 1}
    r = await client.put(f"/api/v1/devices/{dev.id}", json={"name": "m1-renamed"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == "m1-renamed"
    assert body["area"] is None
    assert body["location"] is None
    assert body["metadata"] == {}
    actions = await _actions(owner_engine, dev.id)
    assert actions == [
        "device.create",
        "device.credentials.create",
        "device.update",
        "device.update",
    ]


async def _actions(engine: AsyncEngine, device_id: uuid.UUID) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "select action from audit_events where target_id = :d order by created_at, action"
            ),
            {"d": str(device_id)},
        )
        return [r[0] for r in rows]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "x" * 201},
        {"name": "ok", "colour": "red"},
        {"name": "ok", "status": "sleeping"},
        {"name": "ok", "metadata": {"blob": "x" * 20_000}},
        {"name": "ok", "config": [1, 2]},
        {"name": 5},
    ],
)
async def test_invalid_device_bodies_are_refused(world: World, body: dict[str, object]) -> None:
    r = await world.a["developer"].client.post("/api/v1/devices", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_error"
    listed = await world.a["viewer"].client.get("/api/v1/devices")
    assert listed.json()["total"] == 0


async def test_unknown_or_malformed_ids(world: World) -> None:
    client = world.a["developer"].client
    assert (await client.get(f"/api/v1/devices/{uuid.uuid4()}")).status_code == 404
    assert (await client.get("/api/v1/devices/not-a-uuid")).status_code == 422
    assert (await client.delete(f"/api/v1/devices/{uuid.uuid4()}")).status_code == 404


async def test_other_tenants_device_is_not_found_and_untouched(
    factory: Factory, world: World
) -> None:
    theirs = await make_device(factory, world.b_admin, name="beta-secret-device")
    for client in (world.a["admin"].client, world.a["developer"].client):
        for r in (
            await client.get(f"/api/v1/devices/{theirs.id}"),
            await client.patch(f"/api/v1/devices/{theirs.id}", json={"name": "pwned"}),
            await client.delete(f"/api/v1/devices/{theirs.id}"),
            await client.post(f"/api/v1/devices/{theirs.id}/credentials"),
        ):
            assert r.status_code == 404, r.text
            assert "beta-secret-device" not in r.text
    mine = await world.b_admin.client.get(f"/api/v1/devices/{theirs.id}")
    assert mine.json()["name"] == "beta-secret-device"
    listed = await world.a["admin"].client.get("/api/v1/devices")
    assert "beta-secret-device" not in listed.text
    # Tenant B's token still works: nothing was rotated by A's attempts.
    sent = await theirs.client.post("/api/v1/telemetry", json={"telemetry": {"x": 1}})
    assert sent.status_code == 201


async def test_delete_removes_credentials_and_telemetry(
    factory: Factory, world: World, owner_engine: AsyncEngine, runtime: Runtime
) -> None:
    dev = await make_device(factory, world.a["developer"])
    keep = await make_device(factory, world.a["developer"])
    for d in (dev, keep):
        r = await d.client.post(
            "/api/v1/telemetry",
            json={"points": [{"ts": 1_700_000_000_000 + i, "values": {"v": i}} for i in range(3)]},
        )
        # Timestamps far in the past are refused by retention; use server time instead.
        assert r.status_code == 422
        r = await d.client.post("/api/v1/telemetry", json={"telemetry": {"v": 1, "w": 2}})
        assert r.status_code == 201
    r = await world.a["developer"].client.delete(f"/api/v1/devices/{dev.id}")
    assert r.status_code == 204
    sql = "select count(*) from {} where device_id = :d"
    # Points are reached through the series dictionary; the removed series' points are
    # deleted by the telemetry-removed-series job.
    points = (
        "select count(*) from telemetry t join telemetry_series s "
        "on s.tenant_id = t.tenant_id and s.id = t.series_id where s.device_id = :d"
    )
    assert await _count(owner_engine, points, d=dev.id) == 0
    assert await _count(owner_engine, sql.format("device_credentials"), d=dev.id) == 0
    assert await _count(owner_engine, points, d=keep.id) == 2
    await removed.delete_removed_series(runtime)
    assert await _count(owner_engine, "select count(*) from telemetry") == 2
    assert (await world.a["viewer"].client.get(f"/api/v1/devices/{dev.id}")).status_code == 404
    assert (
        await dev.client.post("/api/v1/telemetry", json={"telemetry": {"v": 1}})
    ).status_code == 401
    assert "device.delete" in await _actions(owner_engine, dev.id)


async def test_seat_quota_holds_under_concurrent_creates(
    factory: Factory, owner_engine: AsyncEngine
) -> None:
    tenant = await factory.tenant(max_devices=3)
    dev = await factory.member(tenant, "developer")
    results = await asyncio.gather(
        *(dev.client.post("/api/v1/devices", json={"name": f"d{i}"}) for i in range(12))
    )
    codes = sorted(r.status_code for r in results)
    assert codes == [201] * 3 + [403] * 9
    refused = next(r for r in results if r.status_code == 403).json()
    assert refused["code"] == "quota_exceeded"
    assert refused["quota_type"] == "devices"
    assert refused["limit"] == 3
    stored = await _count(
        owner_engine, "select count(*) from devices where tenant_id = :t", t=tenant.id
    )
    assert stored == 3


async def test_disabled_device_cannot_ingest_until_enabled(factory: Factory, world: World) -> None:
    dev = await make_device(factory, world.a["developer"])
    client = world.a["developer"].client
    r = await client.patch(f"/api/v1/devices/{dev.id}", json={"status": "disabled"})
    assert r.status_code == 200
    assert r.json()["status"] == "disabled"
    sent = await dev.client.post("/api/v1/telemetry", json={"telemetry": {"v": 1}})
    assert sent.status_code == 403, sent.text
    r = await client.patch(f"/api/v1/devices/{dev.id}", json={"status": "enabled"})
    assert r.json()["status"] == "offline"
    sent = await dev.client.post("/api/v1/telemetry", json={"telemetry": {"v": 1}})
    assert sent.status_code == 201, sent.text


async def test_device_count_usage_provider(factory: Factory, world: World) -> None:
    from iiot.quotas import usage
    from iiot.tenancy.context import system_context

    for _ in range(2):
        await make_device(factory, world.a["developer"])
    ctx = system_context(world.tenant_a.id)
    async with factory.rt.db.tenant(ctx) as session:
        figures = await usage.collect(factory.rt.wiring.usage_providers, session, ctx)
    assert figures["device_count"] == 2


async def test_list_searches_name_and_location_literally(factory: Factory, world: World) -> None:
    dev = world.a["developer"]
    await make_device(factory, dev, name="Boiler Pump 7", location="Hall B")
    await make_device(factory, dev, name="Chiller", location="Roof pump room")
    await make_device(factory, dev, name="100% valve", location="Hall A")
    await make_device(factory, dev, name="100x valve")
    viewer = world.a["viewer"].client

    async def names(search: str) -> list[str]:
        r = await viewer.get("/api/v1/devices", params={"search": search})
        assert r.status_code == 200, r.text
        return sorted(d["name"] for d in r.json()["devices"])

    assert await names("PUMP") == ["Boiler Pump 7", "Chiller"]
    assert await names("hall") == ["100% valve", "Boiler Pump 7"]
    # Wildcard characters are taken literally.
    assert await names("0%") == ["100% valve"]
    assert await names("_") == []
    r = await viewer.get("/api/v1/devices", params={"search": "x" * 101})
    assert r.status_code == 422
