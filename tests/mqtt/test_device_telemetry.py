"""Device telemetry over MQTT with paho (3.1.1 and 5): authentication, acknowledgement after
commit, every JSON form, duplicates, quota and refusals."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as paho
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from iiot.mqtt.server import MqttServer
from tests.devices.support import make_device
from tests.fixtures.factories import Factory
from tests.mqtt.conftest import port_of
from tests.mqtt.support import PahoDevice, RawClient

V311, V5 = paho.MQTTv311, paho.MQTTv5
BOTH = pytest.mark.parametrize("protocol", [V311, V5], ids=["3.1.1", "5"])
TOPIC = "v1/devices/me/telemetry"


async def stored(engine: AsyncEngine, device_id: uuid.UUID) -> list[tuple[str, object]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "select key, coalesce(value_num::text, value_bool::text, value_str) "
                "from telemetry t join telemetry_series s "
                "on s.tenant_id = t.tenant_id and s.id = t.series_id "
                "where s.device_id = :d order by ts, key"
            ),
            {"d": device_id},
        )
        return [(r[0], r[1]) for r in rows]


def recent_ms(seconds_ago: int = 60) -> int:
    return int((datetime.now(UTC) - timedelta(seconds=seconds_ago)).timestamp() * 1000)


@BOTH
async def test_wrong_token_is_refused(mqtt: MqttServer, protocol: int) -> None:
    dev = PahoDevice(port_of(mqtt), "dt_not-a-token", protocol)
    rc = await dev.connect(expect_ok=False)
    # 3.1.1: return code 5, which paho reports as "Not authorized" (0x87); MQTT 5: reason 0x86
    # (bad user name or password).
    assert rc.value == (0x87 if protocol == V311 else 0x86)
    await dev.close()
    # On the wire, 3.1.1's CONNACK carries return code 5.
    raw = await RawClient.open(port_of(mqtt))
    assert await raw.connect("dt_not-a-token") == b"\x20\x02\x00\x05"
    await raw.close()


@BOTH
async def test_every_telemetry_form_is_committed_before_the_puback(
    mqtt: MqttServer, factory: Factory, owner_engine: AsyncEngine, protocol: int
) -> None:
    tenant = await factory.tenant()
    handle = await make_device(factory, await factory.member(tenant, "developer"))
    dev = PahoDevice(port_of(mqtt), handle.token, protocol)
    await dev.connect()
    t0 = recent_ms()
    forms: list[tuple[object, set[str]]] = [
        ({"temp": 21.5}, {"temp"}),
        ([{"a": 1}, {"b": True}], {"a", "b"}),
        ({"ts": t0, "values": {"c": "on"}}, {"c"}),
        ([{"ts": t0 + 1, "values": {"d": "42"}}, {"ts": t0 + 2, "values": {"e": 7}}], {"d", "e"}),
    ]
    expected = {"temp": "21.5", "a": "1", "b": "true", "c": "on", "d": "42", "e": "7"}
    seen: dict[str, object] = {}
    for form, keys in forms:
        assert await dev.publish(TOPIC, form) == 0
        # Queried right after the PUBACK, on another connection: already committed.
        seen = dict(await stored(owner_engine, handle.id))
        assert set(seen) >= keys
    assert seen == expected
    # "42" arrived as a string and is stored as a number (ThingsBoard's cast).
    async with owner_engine.connect() as conn:
        num = await conn.scalar(
            text(
                "select value_num from telemetry t join telemetry_series s "
                "on s.tenant_id = t.tenant_id and s.id = t.series_id "
                "where s.device_id = :d and key = 'd'"
            ),
            {"d": handle.id},
        )
    assert num == 42
    await dev.close()


async def test_duplicates_are_acknowledged_and_stored_once(
    mqtt: MqttServer, factory: Factory, owner_engine: AsyncEngine
) -> None:
    tenant = await factory.tenant()
    handle = await make_device(factory, await factory.member(tenant, "developer"))
    dev = PahoDevice(port_of(mqtt), handle.token, V5)
    await dev.connect()
    message = {"ts": recent_ms(), "values": {"v": 1}}
    for _ in range(3):
        rc = await dev.publish(TOPIC, message)
        assert rc == 0
    assert await stored(owner_engine, handle.id) == [("v", "1")]
    await dev.close()


async def test_quota_refusal_mqtt5_reason_code_without_overshoot(
    mqtt: MqttServer, factory: Factory, owner_engine: AsyncEngine
) -> None:
    tenant = await factory.tenant(max_telemetry_points_per_day=5)
    handle = await make_device(factory, await factory.member(tenant, "developer"))
    dev = PahoDevice(port_of(mqtt), handle.token, V5)
    await dev.connect()
    t0 = recent_ms()
    ok = await dev.publish(TOPIC, [{"ts": t0 + i, "values": {"v": i}} for i in range(4)])
    assert ok == 0
    refused = await dev.publish(TOPIC, {"ts": t0 + 10, "values": {"v": 1, "w": 2}})
    assert refused == 0x97
    assert len(await stored(owner_engine, handle.id)) == 4
    # The connection is kept: the last point still fits.
    last = await dev.publish(TOPIC, {"ts": t0 + 20, "values": {"v": 9}})
    assert last == 0
    assert len(await stored(owner_engine, handle.id)) == 5
    await dev.close()


async def test_quota_refusal_mqtt311_closes_without_puback(
    mqtt: MqttServer, factory: Factory, owner_engine: AsyncEngine
) -> None:
    tenant = await factory.tenant(max_telemetry_points_per_day=2)
    handle = await make_device(factory, await factory.member(tenant, "developer"))
    dev = PahoDevice(port_of(mqtt), handle.token, V311)
    await dev.connect()
    t0 = recent_ms()
    assert await dev.publish(TOPIC, [{"ts": t0, "values": {"a": 1, "b": 2}}]) == 0
    assert await dev.publish(TOPIC, {"ts": t0 + 1, "values": {"c": 3}}) is None  # no PUBACK
    assert await dev.wait_disconnected(2)
    assert len(await stored(owner_engine, handle.id)) == 2
    await dev.close()


async def test_mqtt5_unknown_topic_and_bad_payload_keep_the_connection(
    mqtt: MqttServer, factory: Factory, owner_engine: AsyncEngine
) -> None:
    tenant = await factory.tenant()
    handle = await make_device(factory, await factory.member(tenant, "developer"))
    dev = PahoDevice(port_of(mqtt), handle.token, V5)
    await dev.connect()
    unknown = await dev.publish("v1/devices/me/nowhere", {"a": 1})
    assert unknown == 0x90
    for bad in (b"{not json", b'{"k": {"nested": NaN}}', b"[1, 2]", b'"text"'):
        assert await dev.publish(TOPIC, bad) == 0x99, bad
    rc = await dev.publish(TOPIC, {"fine": 1})
    assert rc == 0
    assert await stored(owner_engine, handle.id) == [("fine", "1")]
    # A device that is not a gateway cannot use the gateway topics.
    gw = await dev.publish("v1/gateway/telemetry", {"Other": [{"x": 1}]})
    assert gw == 0x90
    await dev.close()


async def test_mqtt311_malformed_payload_closes_the_connection(
    mqtt: MqttServer, factory: Factory
) -> None:
    tenant = await factory.tenant()
    handle = await make_device(factory, await factory.member(tenant, "developer"))
    dev = PahoDevice(port_of(mqtt), handle.token, V311)
    await dev.connect()
    assert await dev.publish(TOPIC, b"{oops") is None
    assert await dev.wait_disconnected(2)
    await dev.close()


async def test_revoked_token_disconnects_within_a_second(
    mqtt: MqttServer, factory: Factory
) -> None:
    tenant = await factory.tenant()
    developer = await factory.member(tenant, "developer")
    handle = await make_device(factory, developer)
    dev = PahoDevice(port_of(mqtt), handle.token, V5)
    await dev.connect()
    r = await developer.client.post(f"/api/v1/devices/{handle.id}/credentials")
    assert r.status_code == 201, r.text
    started = time.monotonic()
    assert await dev.wait_disconnected(1.5)
    assert time.monotonic() - started < 1.2
    # And the old token no longer connects.
    again = PahoDevice(port_of(mqtt), handle.token, V311)
    assert (await again.connect(expect_ok=False)).value == 0x87
    await again.close()
    await dev.close()


async def test_qos2_subscription_is_granted_qos1(mqtt: MqttServer, factory: Factory) -> None:
    tenant = await factory.tenant()
    handle = await make_device(factory, await factory.member(tenant, "developer"))
    dev = PahoDevice(port_of(mqtt), handle.token, V311)
    await dev.connect()
    granted = await dev.subscribe("v1/devices/me/attributes", qos=2)
    assert [g.value for g in granted] == [1]
    await dev.close()


async def test_qos0_telemetry_is_stored(
    mqtt: MqttServer, factory: Factory, owner_engine: AsyncEngine
) -> None:
    tenant = await factory.tenant()
    handle = await make_device(factory, await factory.member(tenant, "developer"))
    dev = PahoDevice(port_of(mqtt), handle.token, V311)
    await dev.connect()
    await dev.publish(TOPIC, {"q0": 1}, qos=0)
    for _ in range(100):
        if await stored(owner_engine, handle.id):
            break
        await asyncio.sleep(0.02)
    assert await stored(owner_engine, handle.id) == [("q0", "1")]
    await dev.close()
