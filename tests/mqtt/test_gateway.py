"""The gateway API over MQTT (paho): sub-devices created by name in the gateway's tenant,
telemetry, attributes and RPC through the gateway, the device quota, tenant isolation."""

from __future__ import annotations

import asyncio
import uuid

import paho.mqtt.client as paho
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from iiot.mqtt.server import MqttServer
from tests.devices.support import DeviceHandle, make_device
from tests.fixtures.factories import Actor, Factory
from tests.mqtt.conftest import port_of
from tests.mqtt.support import PahoDevice
from tests.mqtt.test_device_telemetry import recent_ms


async def gateway_of(
    factory: Factory, tenant_kw: dict[str, object] | None = None
) -> tuple[Actor, DeviceHandle]:
    tenant = await factory.tenant(**(tenant_kw or {}))
    developer = await factory.member(tenant, "developer")
    return developer, await make_device(factory, developer, is_gateway=True)


async def device_named(engine: AsyncEngine, tenant_id: object, name: str) -> uuid.UUID | None:
    async with engine.connect() as conn:
        found = await conn.scalar(
            text("select id from devices where tenant_id = :t and name = :n"),
            {"t": tenant_id, "n": name},
        )
    return found


async def points_of(engine: AsyncEngine, device_id: uuid.UUID) -> dict[str, float]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "select key, value_num from telemetry t join telemetry_series s "
                "on s.tenant_id = t.tenant_id and s.id = t.series_id where s.device_id = :d"
            ),
            {"d": device_id},
        )
        return {r[0]: r[1] for r in rows}


async def test_gateway_sub_devices_telemetry_and_attributes(
    mqtt: MqttServer, factory: Factory, owner_engine: AsyncEngine
) -> None:
    developer, gw = await gateway_of(factory)
    client = PahoDevice(port_of(mqtt), gw.token, paho.MQTTv5)
    await client.connect()
    await client.subscribe(
        "v1/gateway/attributes", "v1/gateway/attributes/response", "v1/gateway/rpc"
    )
    assert await client.publish("v1/gateway/connect", {"device": "Pump 1", "type": "pump"}) == 0
    assert (
        await client.publish(
            "v1/gateway/telemetry",
            {"Pump 1": [{"ts": recent_ms(), "values": {"rpm": 1200}}], "Pump 2": [{"rpm": 900}]},
        )
        == 0
    )
    r = await developer.client.get("/api/v1/devices", params={"limit": 100})
    assert r.status_code == 200, r.text
    by_name = {d["name"]: d for d in r.json()["devices"]}
    assert {"Pump 1", "Pump 2"} <= set(by_name)
    assert by_name["Pump 1"]["type"] == "pump"
    assert by_name["Pump 2"]["type"] == "default"
    pump2 = uuid.UUID(by_name["Pump 2"]["id"])
    # Acknowledged means committed: the sub-device's telemetry is queryable right away.
    r = await developer.client.get("/api/v1/telemetry/latest", params={"device_id": str(pump2)})
    assert r.status_code == 200, r.text
    assert "rpm" in r.text
    assert await points_of(owner_engine, pump2) == {"rpm": 900}

    # Client attributes of a sub-device, then a request for them.
    assert await client.publish("v1/gateway/attributes", {"Pump 1": {"model": "X9"}}) == 0
    request = {"id": 5, "device": "Pump 1", "client": True, "key": "model"}
    assert await client.publish("v1/gateway/attributes/request", request) == 0
    answer = await client.next_message("v1/gateway/attributes/response")
    assert answer.payload == {"id": 5, "device": "Pump 1", "value": "X9"}

    # A shared attribute set by a user reaches the sub-device through the gateway.
    pump1 = by_name["Pump 1"]["id"]
    r = await developer.client.post(
        f"/api/v1/devices/{pump1}/attributes/shared", json={"setpoint": 50}
    )
    assert r.status_code in (200, 201, 204), r.text
    push = await client.next_message("v1/gateway/attributes")
    assert push.payload == {"device": "Pump 1", "data": {"setpoint": 50}}

    # Server-side RPC to a sub-device, answered by the gateway.
    call = asyncio.create_task(
        developer.client.post(
            f"/api/v1/devices/{pump1}/rpc", json={"method": "stop", "timeout_ms": 5000}
        )
    )
    rpc = await client.next_message("v1/gateway/rpc")
    assert rpc.payload["device"] == "Pump 1"
    assert rpc.payload["data"]["method"] == "stop"
    reply = {"device": "Pump 1", "id": rpc.payload["data"]["id"], "data": {"stopped": True}}
    assert await client.publish("v1/gateway/rpc", reply) == 0
    r = await call
    assert r.status_code == 200, r.text
    assert r.json()["response"] == {"stopped": True}
    await client.close()


async def test_gateway_sub_device_quota(
    mqtt: MqttServer, factory: Factory, owner_engine: AsyncEngine
) -> None:
    # The gateway itself is one device of the two allowed.
    developer, gw = await gateway_of(factory, {"max_devices": 2})
    client = PahoDevice(port_of(mqtt), gw.token, paho.MQTTv5)
    await client.connect()
    assert await client.publish("v1/gateway/connect", {"device": "A"}) == 0
    refused = await client.publish("v1/gateway/telemetry", {"B": [{"v": 1}]})
    assert refused == 0x97  # quota exceeded, with the reason
    r = await developer.client.get("/api/v1/devices", params={"limit": 100})
    assert sorted(d["name"] for d in r.json()["devices"]) == sorted([gw.body["name"], "A"])
    # The connection stays usable for the device that exists.
    assert await client.publish("v1/gateway/telemetry", {"A": [{"v": 1}]}) == 0
    await client.close()


async def test_gateway_of_another_tenant_never_reaches_the_first(
    mqtt: MqttServer, factory: Factory, owner_engine: AsyncEngine
) -> None:
    dev_a, _ = await gateway_of(factory)
    pump_a = await make_device(factory, dev_a, name="Pump 1")
    _, gw_b = await gateway_of(factory)
    b = PahoDevice(port_of(mqtt), gw_b.token, paho.MQTTv5)
    await b.connect()
    await b.subscribe("v1/gateway/attributes/response", "v1/devices/me/attributes/response/+")
    assert (
        await b.publish(
            "v1/gateway/telemetry", {"Pump 1": [{"ts": recent_ms(), "values": {"x": 1}}]}
        )
        == 0
    )
    assert await b.publish("v1/gateway/attributes", {"Pump 1": {"owner": "B"}}) == 0
    # A's "Pump 1" got nothing; B has its own "Pump 1".
    assert await points_of(owner_engine, pump_a.id) == {}
    r = await dev_a.client.get(f"/api/v1/devices/{pump_a.id}/attributes")
    assert r.json()["client"] == {}
    tenant_b = await b_tenant(owner_engine, gw_b.id)
    pump_b = await device_named(owner_engine, tenant_b, "Pump 1")
    assert pump_b is not None
    assert pump_b != pump_a.id
    # Reading "Pump 1"'s attributes through B's gateway shows B's value, never A's.
    r = await dev_a.client.post(
        f"/api/v1/devices/{pump_a.id}/attributes/shared", json={"secret": "A-only"}
    )
    assert r.status_code in (200, 201, 204), r.text
    ask = {"id": 1, "device": "Pump 1", "client": False, "keys": ["secret"]}
    assert await b.publish("v1/gateway/attributes/request", ask) == 0
    answer = await b.next_message("v1/gateway/attributes/response")
    assert answer.payload == {"id": 1, "device": "Pump 1"}
    # A's "Pump 1" is online and receives a call; B answering that call id through its
    # gateway or as a device completes nothing of A: the call times out.
    a_device = PahoDevice(port_of(mqtt), pump_a.token, paho.MQTTv311)
    await a_device.connect()
    await a_device.subscribe("v1/devices/me/rpc/request/+")
    call = asyncio.create_task(
        dev_a.client.post(
            f"/api/v1/devices/{pump_a.id}/rpc", json={"method": "m", "timeout_ms": 1500}
        )
    )
    delivered = await a_device.next_message("v1/devices/me/rpc/request/")
    request_id = int(delivered.topic.rsplit("/", 1)[1])
    gw_reply = {"device": "Pump 1", "id": request_id, "data": "B"}
    # Taken, but it reaches no call (MQTT 5: 0x10, no matching subscribers).
    assert await b.publish("v1/gateway/rpc", gw_reply) == 0x10
    assert await b.publish(f"v1/devices/me/rpc/response/{request_id}", {"from": "B"}) == 0x10
    r = await call
    assert r.status_code == 504, r.text
    await a_device.close()
    await b.close()


async def b_tenant(engine: AsyncEngine, device_id: uuid.UUID) -> uuid.UUID:
    async with engine.connect() as conn:
        return (
            await conn.execute(
                text("select tenant_id from devices where id = :d"), {"d": device_id}
            )
        ).scalar_one()
