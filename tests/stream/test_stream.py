"""`GET /api/v1/stream`: live telemetry and alerts over Server-Sent Events, on a real server."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from iiot.runtime import Runtime
from iiot.stream.hub import TELEMETRY_CHANNEL, hub
from tests.fixtures.factories import Actor, Factory, World
from tests.fixtures.tls import tls_context
from tests.rules.helpers import make_device, make_rule, send

SSE = {"Accept": "text/event-stream"}


class Events:
    """The events of one open stream, read in the background."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.items: list[tuple[str, dict[str, Any]]] = []
        self.ready = asyncio.Event()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        event = "message"
        async for line in self.response.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                self.items.append((event, json.loads(line[6:])))
                if event == "ready":
                    self.ready.set()
            elif line == "":
                event = "message"

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [data for event, data in self.items if event == kind]

    async def wait_for(
        self, kind: str, count: int = 1, timeout: float = 5.0
    ) -> list[dict[str, Any]]:
        async with asyncio.timeout(timeout):
            while len(self.of(kind)) < count:
                await asyncio.sleep(0.01)
        return self.of(kind)


@asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient, actor: Actor, devices: list[str] | None = None
) -> AsyncIterator[Events]:
    params = {"devices": ",".join(devices)} if devices else {}
    async with client.stream(
        "GET", "/api/v1/stream", params=params, headers={**SSE, **actor.headers}
    ) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        events = Events(response)
        await asyncio.wait_for(events.ready.wait(), 5)
        try:
            yield events
        finally:
            events.task.cancel()
            await asyncio.gather(events.task, return_exceptions=True)


@asynccontextmanager
async def http(base: str, connections: int = 20) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(
        base_url=base, timeout=30, limits=limits, verify=tls_context()
    ) as client:
        yield client


async def test_telemetry_and_alerts_arrive_live(
    live_server: str, runtime: Runtime, world: World
) -> None:
    operator, developer = world.a["operator"], world.a["developer"]
    device = await make_device(developer)
    other = await make_device(developer, name="Pump 2")
    await make_rule(developer)
    async with (
        http(live_server) as client,
        open_stream(client, world.a["viewer"], [device["id"]]) as events,
    ):
        await send(runtime, operator.client, device["id"], {"temperature": 21.5})
        await send(runtime, operator.client, other["id"], {"temperature": 22.5})
        (got,) = await events.wait_for("telemetry")
        assert got["device_id"] == device["id"]
        assert [p[0] for p in got["points"]] == ["temperature"]
        assert got["points"][0][2] == 21.5

        await send(runtime, operator.client, device["id"], {"temperature": 95})
        opened = (await events.wait_for("alert"))[0]
        assert opened["state"] == "new"
        assert opened["event"] == "opened"
        assert opened["severity"] == "high"
        r = await operator.client.post(f"/api/v1/alerts/{opened['id']}/acknowledge", json={})
        assert r.status_code == 200, r.text
        changes = await events.wait_for("alert", 2)
        assert changes[1] == {
            "id": opened["id"],
            "state": "acknowledged",
            "event": "acknowledge",
            "severity": "high",
        }
        # The watched device only: the other device's reading never came.
        assert all(t["device_id"] == device["id"] for t in events.of("telemetry"))


async def test_a_member_of_another_tenant_gets_nothing(
    live_server: str, runtime: Runtime, world: World
) -> None:
    developer = world.a["developer"]
    device = await make_device(developer)
    await make_rule(developer)
    async with http(live_server) as client:
        r = await client.get(
            "/api/v1/stream",
            params={"devices": device["id"]},
            headers={**SSE, **world.b_admin.headers},
        )
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["detail"] == "device not found"
        # B's own stream and A's stream side by side: only A's sees A's events.
        async with (
            open_stream(client, world.b_admin) as b_events,
            open_stream(client, world.a["viewer"], [device["id"]]) as a_events,
        ):
            await send(runtime, world.a["operator"].client, device["id"], {"temperature": 99})
            await a_events.wait_for("alert")
            await a_events.wait_for("telemetry")
            await asyncio.sleep(0.2)
            assert b_events.of("alert") == []
            assert b_events.of("telemetry") == []


async def test_a_stream_needs_the_event_stream_type_and_valid_device_ids(
    live_server: str, world: World
) -> None:
    viewer = world.a["viewer"]
    async with http(live_server) as client:
        r = await client.get("/api/v1/stream", headers=viewer.headers)
        assert r.status_code == 406
        r = await client.get(
            "/api/v1/stream", params={"devices": "not-a-uuid"}, headers={**SSE, **viewer.headers}
        )
        assert r.status_code == 422
        assert r.json()["detail"] == "devices must be comma-separated device ids"
        r = await client.get("/api/v1/stream", headers=SSE)
        assert r.status_code == 401


async def test_notifications_of_other_processes_are_delivered_and_own_ones_not_twice(
    live_server: str, runtime: Runtime, world: World, owner_engine: AsyncEngine
) -> None:
    device = await make_device(world.a["developer"])
    origin = hub(runtime).origin

    async def notify(from_origin: str, value: float) -> None:
        payload = {
            "o": from_origin,
            "t": str(world.tenant_a.id),
            "p": [[device["id"], "pressure", "2026-01-01T00:00:00+00:00", value]],
        }
        async with owner_engine.begin() as conn:
            await conn.execute(
                text("select pg_notify(:c, :p)"), {"c": TELEMETRY_CHANNEL, "p": json.dumps(payload)}
            )

    async with (
        http(live_server) as client,
        open_stream(client, world.a["viewer"], [device["id"]]) as events,
    ):
        await notify(origin, 1.0)  # this process's own: already delivered in-process
        await notify(uuid.uuid4().hex, 2.0)  # another process's
        (got,) = await events.wait_for("telemetry")
        assert got["points"] == [["pressure", "2026-01-01T00:00:00+00:00", 2.0]]


async def test_two_hundred_concurrent_subscribers(
    live_server: str, runtime: Runtime, factory: Factory, world: World
) -> None:
    device = await make_device(world.a["developer"])
    viewer = world.a["viewer"]
    before = hub(runtime).subscriber_count()
    async with http(live_server, 210) as client:
        streams = [open_stream(client, viewer, [device["id"]]) for _ in range(200)]
        opened = await asyncio.gather(*(s.__aenter__() for s in streams))
        try:
            assert hub(runtime).subscriber_count() == before + 200
            await send(runtime, world.a["operator"].client, device["id"], {"temperature": 42.0})
            got = await asyncio.gather(*(e.wait_for("telemetry") for e in opened))
            assert all(g[0]["points"][0][2] == 42.0 for g in got)
        finally:
            await asyncio.gather(*(s.__aexit__(None, None, None) for s in streams))
    for _ in range(100):
        if hub(runtime).subscriber_count() == before:
            break
        await asyncio.sleep(0.02)
    assert hub(runtime).subscriber_count() == before
