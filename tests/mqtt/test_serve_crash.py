"""A real `iiot serve` with MQTT, killed (SIGKILL) while devices publish QoS 1: every point it
acknowledged is in the database afterwards."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from iiot.mqtt import codec
from tests.devices.support import make_device
from tests.fixtures.database import TestDatabase
from tests.fixtures.factories import Factory
from tests.fixtures.ports import free_port

pytestmark = pytest.mark.timeout(90)

IIOT = str(Path(sys.executable).parent / "iiot")


@asynccontextmanager
async def serve(
    db: TestDatabase, mqtt_port: int
) -> AsyncIterator[tuple[asyncio.subprocess.Process, Path]]:
    data_dir = Path(tempfile.mkdtemp(prefix="iiot-mqtt-serve-"))
    http_port = free_port()
    env = {
        **os.environ,
        "IIOT_DATABASE_URL": db.app_url,
        "IIOT_DATABASE_OWNER_URL": db.admin_url,
        "IIOT_JWT_SECRET": "test-secret-" + "y" * 40,
        "IIOT_DATA_DIR": str(data_dir),
        "IIOT_PORT": str(http_port),
        "IIOT_MQTT_PORT": str(mqtt_port),
        "IIOT_ACCESS_LOG": "false",
    }
    log = data_dir / "serve.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            IIOT, "serve", env=env, stdout=out, stderr=out, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 40
        async with httpx.AsyncClient() as client:
            while True:
                assert process.returncode is None, log.read_text()[-3000:]
                try:
                    if (
                        await client.get(f"http://127.0.0.1:{http_port}/health")
                    ).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                await asyncio.sleep(0.2)
        yield process, log
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGKILL)
            await process.wait()
        shutil.rmtree(data_dir, ignore_errors=True)


class Publisher(asyncio.Protocol):
    """A device publishing numbered QoS 1 points, `window` in flight; records what was acked."""

    def __init__(self, token: str, base_ms: int, window: int = 4) -> None:
        self.token = token
        self.base_ms = base_ms
        self.window = window
        self.sent: dict[int, int] = {}  # packet id -> point number
        self.acked: set[int] = set()
        self.next = 0
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.connected = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports are not subclasses of asyncio.Transport)
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(
            codec.encode_client_connect(
                codec.Connect(codec.MQTT_311, uuid.uuid4().hex, True, 60, username=self.token)
            )
        )

    def publish(self) -> None:
        assert self.transport is not None
        n = self.next
        self.next += 1
        packet_id = n % 65535 + 1
        self.sent[packet_id] = n
        payload = b'{"ts":%d,"values":{"n":%d}}' % (self.base_ms + n, n)
        self.transport.write(
            codec.encode_client_publish(
                codec.Publish("v1/devices/me/telemetry", payload, 1, packet_id), codec.MQTT_311
            )
        )

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 2 and len(self.buffer) >= 2 + self.buffer[1]:
            first, length = self.buffer[0], self.buffer[1]
            body = bytes(self.buffer[2 : 2 + length])
            del self.buffer[: 2 + length]
            if first >> 4 == codec.CONNACK:
                self.connected.set_result(body[1])
                for _ in range(self.window):
                    self.publish()
            elif first >> 4 == codec.PUBACK:
                self.acked.add(self.sent.pop((body[0] << 8) | body[1]))
                self.publish()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.connected.done():
            self.connected.set_exception(ConnectionError("closed"))


async def test_killed_server_loses_no_acknowledged_point(
    db_urls: TestDatabase, factory: Factory, owner_engine: AsyncEngine
) -> None:
    tenant = await factory.tenant()
    developer = await factory.member(tenant, "developer")
    devices = [await make_device(factory, developer) for _ in range(8)]
    # An operator exists: the server creates no bootstrap admin (a production-cost hash).
    await factory.user(is_system_admin=True)
    mqtt_port = free_port()
    base_ms = int((datetime.now(UTC) - timedelta(minutes=1)).timestamp() * 1000)
    loop = asyncio.get_running_loop()
    async with serve(db_urls, mqtt_port) as (process, log):
        publishers = []
        for handle in devices:
            _, pub = await loop.create_connection(
                lambda h=handle: Publisher(h.token, base_ms), "127.0.0.1", mqtt_port
            )
            publishers.append(pub)
        codes = await asyncio.gather(*(p.connected for p in publishers), return_exceptions=True)
        assert codes == [0] * len(devices), log.read_text()[-3000:]
        # Publish under load, then kill the server mid-stream.
        deadline = time.monotonic() + 10
        while sum(len(p.acked) for p in publishers) < 400 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        await process.wait()
        assert "MQTT listening on mqtt://127.0.0.1:" in log.read_text()
    acked = {h.id: p.acked for h, p in zip(devices, publishers, strict=True)}
    assert sum(len(a) for a in acked.values()) >= 400
    async with owner_engine.connect() as conn:
        for device_id, numbers in acked.items():
            rows = await conn.execute(
                text(
                    "select value_num from telemetry t join telemetry_series s "
                    "on s.tenant_id = t.tenant_id and s.id = t.series_id "
                    "where s.device_id = :d and key = 'n'"
                ),
                {"d": device_id},
            )
            stored = {int(r[0]) for r in rows}
            assert numbers <= stored, f"acknowledged but lost: {sorted(numbers - stored)[:10]}"
