"""Delivery between processes sharing one database (LISTEN/NOTIFY both ways).

The device's session lives in another process than the user's request: first a second
`Runtime` with its own app in this process (a process in all but the PID), then a real
`iiot serve` subprocess reached over TCP, whose output must not show the device token.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from iiot.app import MODULES, create_app
from iiot.config import Settings
from iiot.connectivity.hub import hub, stop_hub
from iiot.devices.token_cache import stop_listener
from iiot.runtime import Runtime
from tests.connectivity.support import RecordingSession, attached
from tests.devices.support import make_device
from tests.fixtures.database import TestDatabase
from tests.fixtures.factories import Factory, World
from tests.fixtures.ports import free_port

IIOT = Path(sys.executable).parent / "iiot"


@pytest.fixture
async def other_process(settings: Settings, db_urls: TestDatabase) -> AsyncIterator[Runtime]:
    rt = Runtime.build(settings, db_urls.app_url, MODULES)
    await hub(rt).wait_listening()
    yield rt
    await stop_hub(rt)
    await stop_listener(rt)
    await rt.db.dispose()


def _client(rt: Runtime) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(runtime=rt)), base_url="http://other"
    )


async def test_rpc_and_attribute_push_reach_a_session_of_another_runtime(
    factory: Factory, world: World, other_process: Runtime
) -> None:
    await hub(factory.rt).wait_listening()
    dev = await make_device(factory, world.a["developer"])
    operator = world.a["operator"].client
    async with _client(other_process) as device_side:
        poll = asyncio.create_task(
            device_side.get(f"/api/v1/{dev.token}/rpc", params={"timeout": 5000})
        )
        await attached(other_process, dev.id)
        assert hub(factory.rt).sessions(dev.id) == []  # not in the caller's process
        call = asyncio.create_task(
            operator.post(
                f"/api/v1/devices/{dev.id}/rpc",
                json={"method": "getLevel", "params": {"tank": 2}, "timeout_ms": 5000},
            )
        )
        polled = await poll
        assert polled.status_code == 200, (polled.text, (await call).text)
        request = polled.json()
        assert (request["method"], request["params"]) == ("getLevel", {"tank": 2})
        r = await device_side.post(f"/api/v1/{dev.token}/rpc/{request['id']}", json={"l": 73})
        assert r.status_code == 200
        answered = await call
        assert answered.status_code == 200, answered.text
        assert answered.json()["response"] == {"l": 73}

        # One-way: 202 as soon as the other process reports delivery.
        session = RecordingSession(dev.id, world.tenant_a.id)
        hub(other_process).attach(session)
        started = time.monotonic()
        r = await operator.post(
            f"/api/v1/devices/{dev.id}/rpc", json={"method": "beep", "oneway": True}
        )
        assert r.status_code == 202, r.text
        assert time.monotonic() - started < 0.9  # the ack, not the offline deadline
        assert (await asyncio.wait_for(session.rpc.get(), 2))[1] == "beep"
        await world.a["developer"].client.post(
            f"/api/v1/devices/{dev.id}/attributes/shared", json={"target": 5}
        )
        assert await asyncio.wait_for(session.attributes.get(), 5) == ({"target": 5}, [])
        hub(other_process).detach(session)


@pytest.fixture
def served(db_urls: TestDatabase, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IIOT_")}
    env.update(
        IIOT_ENV="development",
        IIOT_DATABASE_URL=db_urls.app_url,
        IIOT_JWT_SECRET="cross-process-test-" + "y" * 40,
        IIOT_PORT=str(port),
        IIOT_HOST="127.0.0.1",
        IIOT_MQTT_PORT=str(free_port()),
        IIOT_RUN_BACKGROUND_JOBS="false",
        IIOT_ACCESS_LOG="true",
        IIOT_DATA_DIR=str(tmp_path / "data"),
    )
    proc = subprocess.Popen(  # noqa: S603 - our own entry point
        [str(IIOT), "serve"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        with httpx.Client(timeout=1) as client:  # one TLS context, not one per attempt
            while time.monotonic() < deadline:
                assert proc.poll() is None, proc.communicate()[0]
                try:
                    if client.get(f"{base}/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            else:
                pytest.fail("iiot serve did not start")
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


async def test_a_real_second_server(
    factory: Factory, world: World, served: tuple[str, subprocess.Popen[str]]
) -> None:
    base, proc = served
    await hub(factory.rt).wait_listening()
    dev = await make_device(factory, world.a["developer"])
    developer = world.a["developer"].client
    async with httpx.AsyncClient(base_url=base, timeout=10) as device_side:
        r = await device_side.post(f"/api/v1/{dev.token}/telemetry", json={"temp": "19.5"})
        assert r.status_code == 200, r.text
        # The poll attaches in the other process once its token is checked; until then a
        # call finds the device offline (409), so the call is repeated until it is taken.
        poll = asyncio.create_task(
            device_side.get(f"/api/v1/{dev.token}/rpc", params={"timeout": 8000})
        )
        call = None
        for _ in range(20):
            call = asyncio.create_task(
                world.a["operator"].client.post(
                    f"/api/v1/devices/{dev.id}/rpc", json={"method": "ping", "timeout_ms": 8000}
                )
            )
            await asyncio.wait([call, poll], return_when=asyncio.FIRST_COMPLETED)
            if not call.done() or call.result().status_code != 409:
                break
        assert call is not None
        got = await poll
        assert got.status_code == 200, got.text
        request_id = got.json()["id"]
        await device_side.post(f"/api/v1/{dev.token}/rpc/{request_id}", json={"pong": True})
        answered = await call
        assert answered.status_code == 200, answered.text
        assert answered.json()["response"] == {"pong": True}

        updates = asyncio.create_task(
            device_side.get(f"/api/v1/{dev.token}/attributes/updates", params={"timeout": 8000})
        )
        for n in range(40):  # until the poll has attached and heard one
            await developer.post(f"/api/v1/devices/{dev.id}/attributes/shared", json={"sp": n})
            done, _ = await asyncio.wait([updates], timeout=0.25)
            if done:
                break
        assert list((await updates).json()) == ["sp"]

        # Rotating the token (in this process) ends the other server's waiting poll at once.
        poll = asyncio.create_task(
            device_side.get(f"/api/v1/{dev.token}/rpc", params={"timeout": 8000})
        )
        await asyncio.sleep(1.0)
        started = time.monotonic()
        await developer.post(f"/api/v1/devices/{dev.id}/credentials")
        ended = await poll
        assert ended.status_code in (408, 401)  # closed, or refused if not yet attached
        assert time.monotonic() - started < 3
        assert (await device_side.get(f"/api/v1/{dev.token}/attributes")).status_code == 401
    proc.terminate()
    output = proc.communicate(timeout=15)[0]
    assert "/api/v1/***/rpc" in output
    assert dev.token not in output
    assert dev.token[3:20] not in output
