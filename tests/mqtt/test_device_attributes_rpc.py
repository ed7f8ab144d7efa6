"""Attributes and RPC over MQTT (paho), both directions, and client-side RPC."""

from __future__ import annotations

import asyncio

import paho.mqtt.client as paho
import pytest

from iiot.mqtt.server import MqttServer
from tests.devices.support import make_device
from tests.fixtures.factories import Factory
from tests.mqtt.conftest import port_of
from tests.mqtt.support import PahoDevice

BOTH = pytest.mark.parametrize("protocol", [paho.MQTTv311, paho.MQTTv5], ids=["3.1.1", "5"])


@BOTH
async def test_attributes_both_ways(mqtt: MqttServer, factory: Factory, protocol: int) -> None:
    tenant = await factory.tenant()
    developer = await factory.member(tenant, "developer")
    handle = await make_device(factory, developer)
    dev = PahoDevice(port_of(mqtt), handle.token, protocol)
    await dev.connect()
    await dev.subscribe("v1/devices/me/attributes", "v1/devices/me/attributes/response/+")

    # Client attributes: committed when acknowledged, visible over REST.
    assert await dev.publish("v1/devices/me/attributes", {"fw": "v1.2", "serial": 42}) == 0
    r = await developer.client.get(f"/api/v1/devices/{handle.id}/attributes")
    assert r.status_code == 200, r.text
    assert {k: v["value"] for k, v in r.json()["client"].items()} == {"fw": "v1.2", "serial": 42}

    # Shared attributes written by a user are pushed to the subscribed device.
    r = await developer.client.post(
        f"/api/v1/devices/{handle.id}/attributes/shared", json={"interval": 5, "mode": "eco"}
    )
    assert r.status_code in (200, 201, 204), r.text
    push = await dev.next_message("v1/devices/me/attributes")
    assert push.topic == "v1/devices/me/attributes"
    assert push.payload == {"interval": 5, "mode": "eco"}

    # Request/response: the device asks for some keys of both scopes.
    assert (
        await dev.publish(
            "v1/devices/me/attributes/request/7", {"clientKeys": "fw", "sharedKeys": "mode,none"}
        )
        == 0
    )
    answer = await dev.next_message("v1/devices/me/attributes/response/")
    assert answer.topic == "v1/devices/me/attributes/response/7"
    assert answer.payload == {"client": {"fw": "v1.2"}, "shared": {"mode": "eco"}}

    # Deleting a shared attribute is pushed as "deleted".
    r = await developer.client.delete(
        f"/api/v1/devices/{handle.id}/attributes/shared", params={"keys": "mode"}
    )
    assert r.status_code in (200, 204), r.text
    push = await dev.next_message("v1/devices/me/attributes")
    assert push.payload == {"deleted": ["mode"]}
    await dev.close()


@BOTH
async def test_server_side_rpc_round_trip(
    mqtt: MqttServer, factory: Factory, protocol: int
) -> None:
    tenant = await factory.tenant()
    operator = await factory.member(tenant, "developer")
    handle = await make_device(factory, operator)
    dev = PahoDevice(port_of(mqtt), handle.token, protocol)
    await dev.connect()
    await dev.subscribe("v1/devices/me/rpc/request/+")

    call = asyncio.create_task(
        operator.client.post(
            f"/api/v1/devices/{handle.id}/rpc",
            json={"method": "setValve", "params": {"open": True}, "timeout_ms": 5000},
        )
    )
    request = await dev.next_message("v1/devices/me/rpc/request/")
    assert request.payload == {"method": "setValve", "params": {"open": True}}
    request_id = request.topic.rsplit("/", 1)[1]
    assert await dev.publish(f"v1/devices/me/rpc/response/{request_id}", {"ok": True}) == 0
    r = await call
    assert r.status_code == 200, r.text
    assert r.json()["response"] == {"ok": True}
    await dev.close()


async def test_rpc_to_a_device_not_subscribed_is_refused_as_offline(
    mqtt: MqttServer, factory: Factory
) -> None:
    tenant = await factory.tenant()
    operator = await factory.member(tenant, "developer")
    handle = await make_device(factory, operator)
    dev = PahoDevice(port_of(mqtt), handle.token, paho.MQTTv311)
    await dev.connect()  # connected, but never subscribed to RPC requests
    r = await operator.client.post(
        f"/api/v1/devices/{handle.id}/rpc", json={"method": "x", "timeout_ms": 1000}
    )
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "device_offline"
    await dev.close()


@BOTH
async def test_client_side_rpc(mqtt: MqttServer, factory: Factory, protocol: int) -> None:
    tenant = await factory.tenant()
    handle = await make_device(factory, await factory.member(tenant, "developer"))
    dev = PahoDevice(port_of(mqtt), handle.token, protocol)
    await dev.connect()
    await dev.subscribe("v1/devices/me/rpc/response/+")
    assert (
        await dev.publish(
            "v1/devices/me/rpc/request/1", {"method": "getSessionLimits", "params": {}}
        )
        == 0
    )
    limits = await dev.next_message("v1/devices/me/rpc/response/1")
    assert limits.payload["maxPayloadSize"] > 0
    assert set(limits.payload["rateLimits"]) == {
        "messages",
        "telemetryMessages",
        "telemetryDataPoints",
    }
    assert await dev.publish("v1/devices/me/rpc/request/2", {"method": "getCurrentTime"}) == 0
    now = await dev.next_message("v1/devices/me/rpc/response/2")
    assert now.payload["currentTime"] > 1_700_000_000_000
    assert await dev.publish("v1/devices/me/rpc/request/3", {"method": "nope", "params": 1}) == 0
    unknown = await dev.next_message("v1/devices/me/rpc/response/3")
    assert "error" in unknown.payload
    await dev.close()
