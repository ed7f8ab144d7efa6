"""Protocol hygiene with a raw client: malformed packets, missing CONNECT, keep-alive, many
idle connections."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from iiot.identity.tokens import digest, new_secret
from iiot.mqtt import codec, module
from iiot.mqtt.server import MqttServer, mqtt_server
from iiot.runtime import Runtime
from tests.devices.support import make_device
from tests.fixtures.factories import Factory
from tests.mqtt.conftest import port_of
from tests.mqtt.support import RawClient

CONNACK_OK = b"\x20\x02\x00\x00"


async def test_malformed_packet_closes_that_connection_only(
    mqtt: MqttServer, factory: Factory
) -> None:
    tenant = await factory.tenant()
    handle = await make_device(factory, await factory.member(tenant, "developer"))
    port = port_of(mqtt)
    good = await RawClient.open(port)
    assert await good.connect(handle.token) == CONNACK_OK
    garbage = [
        b"\x30\xff\xff\xff\xff\x7f",  # remaining length of five bytes
        b"\x32\x03\x00\x05ab",  # topic longer than the packet
        b"\x82\x02\x00\x01",  # SUBSCRIBE without topics
        b"\x00\x00",  # reserved packet type
        b"\x3e\x04\x00\x01a\x00",  # PUBLISH with QoS 3
    ]
    for data in garbage:
        bad = await RawClient.open(port)
        assert await bad.connect(handle.token) == CONNACK_OK
        await bad.send(data)
        assert await bad.closed_by_server(2), data
        await bad.close()
    # The well-behaved connection is untouched.
    await good.send(codec.PINGRESP_PACKET[:0] + bytes((codec.PINGREQ << 4, 0)))
    assert await good.read_packet() == codec.PINGRESP_PACKET
    await good.close()


async def test_a_client_that_never_sends_connect_is_dropped(mqtt: MqttServer) -> None:
    client = await RawClient.open(port_of(mqtt))
    started = time.monotonic()
    assert await client.closed_by_server(5)
    # The test server's CONNECT timeout is one second (checked every half second).
    assert 0.9 <= time.monotonic() - started < 2.5
    await client.close()


async def test_packets_before_connect_are_refused(mqtt: MqttServer) -> None:
    client = await RawClient.open(port_of(mqtt))
    await client.send(bytes((codec.PINGREQ << 4, 0)))
    assert await client.closed_by_server(2)
    await client.close()


async def test_keepalive_expiry_closes_the_connection(mqtt: MqttServer, factory: Factory) -> None:
    tenant = await factory.tenant()
    handle = await make_device(factory, await factory.member(tenant, "developer"))
    client = await RawClient.open(port_of(mqtt))
    await client.send(
        codec.encode_client_connect(
            codec.Connect(codec.MQTT_5, "ka", True, 1, username=handle.token)
        )
    )
    assert (await client.read_packet())[3] == 0  # CONNACK success (MQTT 5)
    started = time.monotonic()
    packet = await client.read_packet(4)
    # MQTT 5 tells why: DISCONNECT with reason 0x8D (keep alive timeout).
    assert packet[:1] == bytes((codec.DISCONNECT << 4,))
    assert packet[2] == codec.KEEP_ALIVE_TIMEOUT
    assert 1.4 <= time.monotonic() - started < 3.0
    await client.close()


async def seed_devices(engine: AsyncEngine, tenant_id: uuid.UUID, n: int) -> list[str]:
    """`n` devices with a token each, inserted directly (set-up only: creating a thousand
    devices through the API would dominate the test)."""
    tokens = [new_secret("dt_") for _ in range(n)]
    devices = [uuid.uuid4() for _ in range(n)]
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "insert into devices (tenant_id, id, name, status) values (:t, :d, :n, 'offline')"
            ),
            [{"t": tenant_id, "d": d, "n": f"idle-{i}"} for i, d in enumerate(devices)],
        )
        await conn.execute(
            text(
                "insert into device_credentials (tenant_id, id, device_id, token_hash)"
                " values (:t, :i, :d, :h)"
            ),
            [
                {"t": tenant_id, "i": uuid.uuid4(), "d": d, "h": digest(token)}
                for d, token in zip(devices, tokens, strict=True)
            ],
        )
    return tokens


async def test_thousand_idle_connections(
    mqtt: MqttServer, factory: Factory, owner_engine: AsyncEngine
) -> None:
    tenant = await factory.tenant(tier="enterprise")
    tokens = await seed_devices(owner_engine, tenant.id, 1000)
    port = port_of(mqtt)

    async def one(token: str) -> RawClient:
        client = await RawClient.open(port)
        await client.send(
            codec.encode_client_connect(codec.Connect(codec.MQTT_311, "", True, 60, username=token))
        )
        return client

    clients: list[RawClient] = []
    for wave in range(10):  # in waves of 100, within the listen backlog
        clients += await asyncio.gather(*(one(t) for t in tokens[wave * 100 : wave * 100 + 100]))
    acks = await asyncio.gather(*(c.read_packet(30) for c in clients))
    assert acks.count(CONNACK_OK) == 1000
    assert len(mqtt.connections) >= 1000
    # Still responsive: every connection answers a ping.
    for c in clients:
        c.writer.write(bytes((codec.PINGREQ << 4, 0)))
    pongs = await asyncio.gather(*(c.read_packet() for c in clients))
    assert pongs.count(codec.PINGRESP_PACKET) == 1000
    await asyncio.gather(*(c.close() for c in clients))


async def test_a_taken_port_is_reported_and_the_server_runs_on(
    runtime: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    """What `iiot serve` (and so `make run`) does when another broker holds the port."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        settings = runtime.settings.model_copy(update={"mqtt_port": port, "mqtt_host": "127.0.0.1"})
        rt = dataclasses.replace(runtime, settings=settings)
        await module.start_listeners(rt)
        try:
            assert mqtt_server(rt).listeners == []
            err = capsys.readouterr().err
            assert f"MQTT is NOT listening on mqtt://127.0.0.1:{port}" in err
            assert "IIOT_MQTT_PORT" in err
        finally:
            await module.stop_listeners(rt)
    # A free port: the console says where MQTT listens.
    settings = runtime.settings.model_copy(update={"mqtt_port": port, "mqtt_host": "127.0.0.1"})
    rt = dataclasses.replace(runtime, settings=settings)
    await module.start_listeners(rt)
    try:
        assert f"MQTT listening on mqtt://127.0.0.1:{port}" in capsys.readouterr().err
    finally:
        await module.stop_listeners(rt)
