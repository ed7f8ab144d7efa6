"""RPC to devices: two-way, one-way, timeout, offline, the record, and the device's side."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from iiot.connectivity import rpc_service
from iiot.connectivity.hub import hub
from iiot.connectivity.schemas import RpcIn
from iiot.tenancy.context import system_context
from tests.connectivity.support import RecordingSession, attached
from tests.devices.support import DeviceHandle, make_device
from tests.fixtures.factories import Factory, World


async def _long_poll(
    factory: Factory, api: httpx.AsyncClient, dev: DeviceHandle
) -> asyncio.Task[httpx.Response]:
    task = asyncio.create_task(api.get(f"/api/v1/{dev.token}/rpc", params={"timeout": 5000}))
    await attached(factory.rt, dev.id)
    return task


async def test_two_way_call_through_the_http_long_poll(factory: Factory, world: World) -> None:
    dev = await make_device(factory, world.a["developer"])
    api = factory.client()
    poll = await _long_poll(factory, api, dev)
    call = asyncio.create_task(
        world.a["operator"].client.post(
            f"/api/v1/devices/{dev.id}/rpc",
            json={"method": "setValve", "params": {"open": 80}, "timeout_ms": 5000},
        )
    )
    got = await poll
    assert got.status_code == 200, got.text
    request = got.json()
    assert request == {"id": request["id"], "method": "setValve", "params": {"open": 80}}
    r = await api.post(f"/api/v1/{dev.token}/rpc/{request['id']}", json={"position": 80})
    assert r.status_code == 200, r.text
    answered = await call
    assert answered.status_code == 200, answered.text
    body = answered.json()
    assert (body["status"], body["response"], body["id"]) == (
        "successful",
        {"position": 80},
        request["id"],
    )
    # A second reply, or one to a call that does not exist, is refused.
    again = await api.post(f"/api/v1/{dev.token}/rpc/{request['id']}", json={})
    assert again.status_code == 409
    assert (await api.post(f"/api/v1/{dev.token}/rpc/987654", json={})).status_code == 404
    listed = await world.a["viewer"].client.get(f"/api/v1/devices/{dev.id}/rpc")
    assert listed.status_code == 200
    [record] = listed.json()["rpc"]
    assert (record["method"], record["status"], record["response"]) == (
        "setValve",
        "successful",
        {"position": 80},
    )
    assert record["delivered_at"] is not None
    assert record["completed_at"] is not None
    one = await world.a["viewer"].client.get(f"/api/v1/devices/{dev.id}/rpc/{request['id']}")
    assert one.json()["status"] == "successful"


async def test_another_device_cannot_answer(factory: Factory, world: World) -> None:
    dev = await make_device(factory, world.a["developer"])
    intruder = await make_device(factory, world.b_admin)
    api = factory.client()
    poll = await _long_poll(factory, api, dev)
    call = asyncio.create_task(
        world.a["operator"].client.post(
            f"/api/v1/devices/{dev.id}/rpc", json={"method": "m", "timeout_ms": 2000}
        )
    )
    request_id = (await poll).json()["id"]
    r = await api.post(f"/api/v1/{intruder.token}/rpc/{request_id}", json={"evil": True})
    assert r.status_code == 404
    await api.post(f"/api/v1/{dev.token}/rpc/{request_id}", json={"good": True})
    assert (await call).json()["response"] == {"good": True}


async def test_one_way_timeout_and_offline(
    factory: Factory, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No process answers for an offline device: waiting less keeps the test short.
    monkeypatch.setattr(rpc_service, "DELIVERY_WAIT_SECONDS", 0.3)
    dev = await make_device(factory, world.a["developer"])
    operator = world.a["operator"].client
    url = f"/api/v1/devices/{dev.id}/rpc"
    session = RecordingSession(dev.id, world.tenant_a.id)
    sessions = hub(factory.rt)
    sessions.attach(session)
    try:
        r = await operator.post(url, json={"method": "blink", "params": [1, 2], "oneway": True})
        assert r.status_code == 202, r.text
        assert r.json()["status"] == "delivered"
        assert session.rpc.get_nowait()[1:] == ("blink", [1, 2])
        started = time.monotonic()
        r = await operator.post(url, json={"method": "slow", "timeout_ms": 300})
        assert r.status_code == 504, r.text
        assert r.json()["code"] == "rpc_timeout"
        assert 0.25 < time.monotonic() - started < 3
        # The reply that comes too late is refused; the record says timeout.
        late_id = session.rpc.get_nowait()[0]
        late = await factory.client().post(f"/api/v1/{dev.token}/rpc/{late_id}", json={})
        assert late.status_code == 409
        session.takes_rpc = False  # connected, but not subscribed to RPC
        r = await operator.post(url, json={"method": "unheard", "timeout_ms": 2000})
        assert r.status_code == 409
        assert r.json()["code"] == "device_offline"
    finally:
        sessions.detach(session)
    r = await operator.post(url, json={"method": "nobody", "timeout_ms": 2000})
    assert r.status_code == 409, r.text
    statuses = [
        (c["method"], c["status"])
        for c in (await operator.get(url, params={"limit": 10})).json()["rpc"]
    ]
    assert statuses == [
        ("nobody", "offline"),
        ("unheard", "offline"),
        ("slow", "timeout"),
        ("blink", "delivered"),
    ]


async def test_validation_and_roles(factory: Factory, world: World) -> None:
    dev = await make_device(factory, world.a["developer"])
    url = f"/api/v1/devices/{dev.id}/rpc"
    viewer = world.a["viewer"].client
    assert (await viewer.post(url, json={"method": "m"})).status_code == 403
    assert (await viewer.get(url)).status_code == 200
    operator = world.a["operator"].client
    for body in (
        {},
        {"method": ""},
        {"method": "m", "timeout_ms": 60_001},
        {"method": "m", "timeout_ms": 0},
        {"method": "m", "extra": 1},
    ):
        r = await operator.post(url, json=body)
        assert r.status_code == 422, (body, r.text)
    assert (await operator.get(url)).json()["total"] == 0
    other = await make_device(factory, world.b_admin)
    r = await operator.post(f"/api/v1/devices/{other.id}/rpc", json={"method": "m"})
    assert r.status_code == 404
    r = await operator.get(f"/api/v1/devices/{other.id}/rpc")
    assert r.status_code == 404


async def test_calls_left_waiting_by_a_vanished_caller_are_closed(
    factory: Factory, world: World, owner_engine: AsyncEngine
) -> None:
    a_dev = await make_device(factory, world.a["developer"])
    b_dev = await make_device(factory, world.b_admin)
    ids = {}
    for name, dev, tenant, body in (
        ("stale", a_dev, world.tenant_a.id, RpcIn(method="m", timeout_ms=100)),
        ("oneway", a_dev, world.tenant_a.id, RpcIn(method="m", oneway=True)),
        ("fresh", b_dev, world.tenant_b.id, RpcIn(method="m", timeout_ms=60_000)),
    ):
        ctx = system_context(tenant)
        async with factory.rt.db.tenant(ctx) as session:
            ids[name] = (await rpc_service.create(session, ctx, dev.id, body)).id
    async with owner_engine.begin() as conn:
        await conn.execute(
            text(
                "update device_rpc set expires_at = now() - interval '1 hour' where id = any(:ids)"
            ),
            {"ids": [ids["stale"], ids["oneway"]]},
        )
    assert await rpc_service.expire_stale(factory.rt) == 1
    async with owner_engine.connect() as conn:
        rows = {i: s for i, s in await conn.execute(text("select id, status from device_rpc"))}
    assert rows == {ids["stale"]: "timeout", ids["oneway"]: "queued", ids["fresh"]: "queued"}
