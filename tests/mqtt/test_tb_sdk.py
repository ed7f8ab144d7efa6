"""The ThingsBoard device SDK and its gateway client (tb-mqtt-client, unmodified, MQTT 5) against
the endpoint: connect, session limits, telemetry, attributes both ways, RPC both ways."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import uuid
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from iiot.mqtt.server import MqttServer
from tests.devices.support import make_device
from tests.fixtures.factories import Factory
from tests.mqtt.conftest import port_of
from tests.mqtt.tb_env import SCENARIO, tb_python

pytestmark = pytest.mark.timeout(90)


class Scenario:
    def __init__(self, process: asyncio.subprocess.Process, log: Any) -> None:
        self.process = process
        self.log = log
        self.events: list[dict[str, Any]] = []

    @classmethod
    async def start(cls, kind: str, port: int, token: str) -> Scenario:
        log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in finish()
        process = await asyncio.create_subprocess_exec(
            str(tb_python()),
            str(SCENARIO),
            kind,
            "127.0.0.1",
            str(port),
            token,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        )
        return cls(process, log)

    def stderr_tail(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-3000:]

    async def until(self, event: str, timeout: float = 30) -> dict[str, Any]:
        assert self.process.stdout is not None
        for seen in self.events:
            if seen["event"] == event:
                self.events.remove(seen)
                return seen
        while True:
            line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
            assert line, f"the SDK scenario ended before {event!r}: {self.stderr_tail()}"
            item = json.loads(line)
            if item["event"] == event:
                return item
            self.events.append(item)

    def of(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == event]

    async def finish(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        self.log.close()


async def test_thingsboard_device_sdk(
    mqtt: MqttServer, factory: Factory, owner_engine: AsyncEngine
) -> None:
    tenant = await factory.tenant()
    developer = await factory.member(tenant, "developer")
    handle = await make_device(factory, developer)
    sdk = await Scenario.start("device", port_of(mqtt), handle.token)
    try:
        await sdk.until("ready", 40)
        assert sdk.of("connected") == [{"event": "connected", "ok": True}]
        # The SDK asks getSessionLimits on connect and waits for the answer.
        assert sdk.of("session_limits") == [{"event": "session_limits", "received": True}]
        assert [e["rc"] for e in sdk.of("telemetry")] == [0, 0]
        assert sdk.of("attributes")[0]["rc"] == 0
        assert sdk.of("attribute_response")[0]["data"] == {"client": {"sdk_attr": "x"}}
        limits = sdk.of("client_rpc")[0]["data"]
        assert "rateLimits" in limits
        async with owner_engine.connect() as conn:
            rows = dict(
                (
                    await conn.execute(
                        text(
                            "select key, value_num from telemetry t join telemetry_series s "
                            "on s.tenant_id = t.tenant_id and s.id = t.series_id "
                            "where s.device_id = :d"
                        ),
                        {"d": handle.id},
                    )
                ).all()
            )
        assert rows == {"sdk_temp": 21.5, "sdk_n": 7}

        r = await developer.client.post(
            f"/api/v1/devices/{handle.id}/attributes/shared", json={"target": 30}
        )
        assert r.status_code in (200, 201, 204), r.text
        push = await sdk.until("attributes_push")
        assert push["data"] == {"target": 30}

        r = await developer.client.post(
            f"/api/v1/devices/{handle.id}/rpc",
            json={"method": "ping", "params": {"n": 1}, "timeout_ms": 10000},
        )
        assert r.status_code == 200, r.text
        assert r.json()["response"] == {"echo": {"n": 1}}
        rpc = await sdk.until("rpc")
        assert rpc["body"] == {"method": "ping", "params": {"n": 1}}
    finally:
        await sdk.finish()


async def test_thingsboard_gateway_sdk(
    mqtt: MqttServer, factory: Factory, owner_engine: AsyncEngine
) -> None:
    tenant = await factory.tenant()
    developer = await factory.member(tenant, "developer")
    gw = await make_device(factory, developer, is_gateway=True)
    sdk = await Scenario.start("gateway", port_of(mqtt), gw.token)
    try:
        await sdk.until("ready", 40)
        assert sdk.of("connected")[0]["ok"] is True
        assert sdk.of("session_limits")[0]["received"] is True
        assert sdk.of("device_connect")[0]["rc"] == 0
        assert sdk.of("telemetry")[0]["rc"] == 0
        assert sdk.of("attributes")[0]["rc"] == 0
        response = sdk.of("attribute_response")[0]["data"]
        assert response["device"] == "SDK Pump"
        assert response["value"] == "acme"
        async with owner_engine.connect() as conn:
            pump = (
                await conn.execute(
                    text("select id, type from devices where tenant_id = :t and name = 'SDK Pump'"),
                    {"t": tenant.id},
                )
            ).one()
            flow = await conn.scalar(
                text(
                    "select value_num from telemetry t join telemetry_series s "
                    "on s.tenant_id = t.tenant_id and s.id = t.series_id "
                    "where s.device_id = :d and key = 'flow'"
                ),
                {"d": pump.id},
            )
        assert pump.type == "sdk-pump"
        assert flow == 3.5
        pump_id = uuid.UUID(str(pump.id))

        r = await developer.client.post(
            f"/api/v1/devices/{pump_id}/attributes/shared", json={"speed": 2}
        )
        assert r.status_code in (200, 201, 204), r.text
        push = await sdk.until("attributes_push")
        assert push["data"] == {"device": "SDK Pump", "data": {"speed": 2}}

        r = await developer.client.post(
            f"/api/v1/devices/{pump_id}/rpc", json={"method": "stop", "timeout_ms": 10000}
        )
        assert r.status_code == 200, r.text
        assert r.json()["response"] == {"done": True}
        rpc = await sdk.until("rpc")
        assert rpc["body"]["device"] == "SDK Pump"
        assert rpc["body"]["data"]["method"] == "stop"
    finally:
        await sdk.finish()
