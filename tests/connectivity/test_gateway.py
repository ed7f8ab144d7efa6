"""Gateway sub-devices: created on first use by name inside the gateway's tenant, linked to
the gateway, counted toward max_devices, and never another tenant's device of that name."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from iiot.connectivity import service
from iiot.connectivity.tb_json import PointIn
from iiot.errors import Conflict, Forbidden, QuotaExceeded, Unauthorized, ValidationFailed
from tests.connectivity.support import stored_points
from tests.devices.support import make_device
from tests.fixtures.factories import Factory, World


async def test_sub_devices_are_created_once_and_linked(
    factory: Factory, world: World, owner_engine: AsyncEngine
) -> None:
    gw = await make_device(factory, world.a["developer"], name="Line gateway", is_gateway=True)
    assert gw.body["is_gateway"] is True
    gateway = await service.authenticate(factory.rt, gw.token)
    assert gateway.is_gateway
    pump = await service.gateway_device(factory.rt, gateway, "Pump 1", "pump")
    meter = await service.gateway_device(factory.rt, gateway, " Meter 7 ")
    assert await service.gateway_device(factory.rt, gateway, "Pump 1") == pump
    # Concurrent first uses of one name make one device.
    twins = await asyncio.gather(
        *(service.gateway_device(factory.rt, gateway, "Valve 3") for _ in range(4))
    )
    assert len({t.device_id for t in twins}) == 1
    devices = (await world.a["viewer"].client.get("/api/v1/devices")).json()["devices"]
    by_name = {d["name"]: d for d in devices}
    assert set(by_name) == {"Line gateway", "Pump 1", "Meter 7", "Valve 3"}
    assert (by_name["Pump 1"]["type"], by_name["Meter 7"]["type"]) == ("pump", "default")
    for name in ("Pump 1", "Meter 7", "Valve 3"):
        assert by_name[name]["gateway_id"] == str(gw.id)
        assert by_name[name]["is_gateway"] is False
    assert by_name["Line gateway"]["gateway_id"] is None
    ms = int(time.time() * 1000) - 5_000
    outcome = await service.ingest(
        factory.rt,
        pump,
        [PointIn(ts=datetime.fromtimestamp(ms / 1000, UTC), values={"rpm": 1450.0})],
    )
    assert (outcome.accepted, outcome.duplicates) == (1, 0)
    await service.save_client_attributes(factory.rt, meter, {"model": "M-7"})
    assert await service.read_attributes(factory.rt, meter, None, None) == {
        "client": {"model": "M-7"}
    }
    assert await stored_points(owner_engine, pump.device_id) == {"rpm": ["1450"]}
    trail = await world.a["admin"].client.get(f"/api/v1/tenants/{world.tenant_a.id}/audit")
    created = [
        e
        for e in trail.json()["events"]
        if e["action"] == "device.create" and e["actor_type"] == "device"
    ]
    assert {e["after"]["name"] for e in created} == {"Pump 1", "Meter 7", "Valve 3"}
    assert {e["actor_id"] for e in created} == {str(gw.id)}


async def test_sub_devices_count_toward_max_devices(factory: Factory) -> None:
    tenant = await factory.tenant(max_devices=2)
    developer = await factory.member(tenant, "developer")
    gw = await make_device(factory, developer, is_gateway=True)
    gateway = await service.authenticate(factory.rt, gw.token)
    await service.gateway_device(factory.rt, gateway, "first")
    with pytest.raises(QuotaExceeded) as refused:
        await service.gateway_device(factory.rt, gateway, "second")
    assert refused.value.extra["quota_type"] == "devices"
    assert (refused.value.extra["limit"], refused.value.extra["current"]) == (2, 2)
    listed = (await developer.client.get("/api/v1/devices")).json()
    assert sorted(d["name"] for d in listed["devices"]) == sorted([gw.body["name"], "first"])


async def test_names_are_per_tenant(
    factory: Factory, world: World, owner_engine: AsyncEngine
) -> None:
    a_pump = await make_device(factory, world.a["developer"], name="Pump 1")
    await a_pump.client.post("/api/v1/telemetry", json={"telemetry": {"rpm": 1}})
    gw_b = await make_device(factory, world.b_admin, is_gateway=True)
    gateway_b = await service.authenticate(factory.rt, gw_b.token)
    b_pump = await service.gateway_device(factory.rt, gateway_b, "Pump 1")
    assert b_pump.device_id != a_pump.id
    assert b_pump.tenant_id == world.tenant_b.id
    await service.ingest(factory.rt, b_pump, [PointIn(ts=datetime.now(UTC), values={"rpm": 999.0})])
    await service.save_client_attributes(factory.rt, b_pump, {"owner": "B"})
    assert await stored_points(owner_engine, a_pump.id) == {"rpm": ["1"]}
    a_view = (await world.a["admin"].client.get(f"/api/v1/devices/{a_pump.id}")).json()
    assert a_view["gateway_id"] is None
    a_attrs = (await world.a["admin"].client.get(f"/api/v1/devices/{a_pump.id}/attributes")).json()
    assert a_attrs["client"] == {}
    async with owner_engine.connect() as conn:
        pumps = (
            await conn.execute(
                text("select tenant_id, gateway_id from devices where name = 'Pump 1'")
            )
        ).all()
    assert sorted(map(str, pumps)) == sorted(
        map(str, [(world.tenant_a.id, None), (world.tenant_b.id, gw_b.id)])
    )


async def test_existing_devices_and_refusals(factory: Factory, world: World) -> None:
    developer = world.a["developer"]
    gw = await service.authenticate(
        factory.rt, (await make_device(factory, developer, is_gateway=True)).token
    )
    other_gw = await service.authenticate(
        factory.rt, (await make_device(factory, developer, is_gateway=True)).token
    )
    plain = await service.authenticate(factory.rt, (await make_device(factory, developer)).token)
    registered = await make_device(factory, developer, name="Registered")
    # A device registered by hand is taken over (and linked) by the first gateway naming it.
    linked = await service.gateway_device(factory.rt, gw, "Registered")
    assert linked.device_id == registered.id
    detail = (await developer.client.get(f"/api/v1/devices/{registered.id}")).json()
    assert detail["gateway_id"] == str(gw.device_id)
    with pytest.raises(Conflict):
        await service.gateway_device(factory.rt, other_gw, "Registered")
    with pytest.raises(Conflict):  # a gateway is nobody's sub-device
        await service.gateway_device(factory.rt, other_gw, gw.name)
    with pytest.raises(Forbidden):
        await service.gateway_device(factory.rt, plain, "Anything")
    for bad in ("", "   ", "x" * 201):
        with pytest.raises(ValidationFailed):
            await service.gateway_device(factory.rt, gw, bad)


async def test_revoked_gateway_token_stops_sub_device_writes(
    factory: Factory, world: World
) -> None:
    gw = await make_device(factory, world.a["developer"], is_gateway=True)
    gateway = await service.authenticate(factory.rt, gw.token)
    pump = await service.gateway_device(factory.rt, gateway, "Pump 9")
    r = await world.a["developer"].client.post(f"/api/v1/devices/{gw.id}/credentials")
    assert r.status_code == 201
    with pytest.raises(Unauthorized):
        await service.ingest(factory.rt, pump, [PointIn(ts=datetime.now(UTC), values={"v": 1.0})])
    with pytest.raises(Unauthorized):
        await service.authenticate(factory.rt, gw.token)
    assert uuid.UUID(str(pump.gateway_id)) == gw.id


async def test_deleting_a_gateway_keeps_its_sub_devices_unlinked(
    factory: Factory, world: World
) -> None:
    gw = await make_device(factory, world.a["developer"], is_gateway=True)
    gateway = await service.authenticate(factory.rt, gw.token)
    pump = await service.gateway_device(factory.rt, gateway, "Pump 5")
    r = await world.a["developer"].client.delete(f"/api/v1/devices/{gw.id}")
    assert r.status_code == 204
    detail = (await world.a["viewer"].client.get(f"/api/v1/devices/{pump.device_id}")).json()
    assert (detail["name"], detail["gateway_id"], detail["tenant_id"]) == (
        "Pump 5",
        None,
        str(world.tenant_a.id),
    )
