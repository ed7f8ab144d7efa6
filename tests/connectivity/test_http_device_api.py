"""The ThingsBoard HTTP device API (`/api/v1/{token}/...`) with a real client over the app."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.connectivity.support import attached, stored_points
from tests.devices.support import make_device
from tests.fixtures.factories import Factory, World


async def test_telemetry_in_every_thingsboard_form(
    factory: Factory, world: World, owner_engine: AsyncEngine
) -> None:
    dev = await make_device(factory, world.a["developer"])
    api = factory.client()
    ms = int(time.time() * 1000) - 60_000
    for body in (
        {"temp": "21.5", "on": True},
        [{"ts": ms, "values": {"rpm": 1200}}, {"ts": ms + 1, "values": {"rpm": "1300"}}],
        {"ts": ms + 2, "values": {"label": "line-3", "cfg": {"mode": 2}}},
    ):
        r = await api.post(f"/api/v1/{dev.token}/telemetry", json=body)
        assert r.status_code == 200, r.text
    assert await stored_points(owner_engine, dev.id) == {
        "cfg": ['{"mode":2}'],
        "label": ["line-3"],
        "on": ["true"],
        "rpm": ["1200", "1300"],
        "temp": ["21.5"],
    }
    detail = (await world.a["viewer"].client.get(f"/api/v1/devices/{dev.id}")).json()
    assert detail["latest_telemetry"]["temp"]["value"] == 21.5
    assert detail["status"] == "online"
    again = await api.post(
        f"/api/v1/{dev.token}/telemetry", json={"ts": ms, "values": {"rpm": 1200}}
    )
    assert again.json() == {"points": 0, "duplicates": 1}


async def test_bad_payloads_are_refused_and_store_nothing(
    factory: Factory, world: World, owner_engine: AsyncEngine
) -> None:
    dev = await make_device(factory, world.a["developer"])
    api = factory.client()
    for content, status in (
        (b"{not json", 422),
        (b"[1, 2]", 422),
        (b'{"ok": 1, "long": "' + b"x" * 300 + b'"}', 422),
        (b'{"ts": 99999999999999, "values": {"a": 1}}', 422),  # far in the future
        (b"", 400),
    ):
        r = await api.post(
            f"/api/v1/{dev.token}/telemetry",
            content=content,
            headers={"content-type": "application/json"},
        )
        assert r.status_code == status, (content[:30], r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    assert await stored_points(owner_engine, dev.id) == {}


async def test_unknown_revoked_and_disabled_tokens(factory: Factory, world: World) -> None:
    dev = await make_device(factory, world.a["developer"])
    api = factory.client()
    for path in ("telemetry", "attributes"):
        r = await api.post(f"/api/v1/dt_not-a-token/{path}", json={"a": 1})
        assert r.status_code == 401, r.text
        assert r.json()["code"] == "unauthorized"
    assert (await api.get("/api/v1/nonsense/attributes")).status_code == 401
    assert (await api.get("/api/v1/nonsense/rpc", params={"timeout": 10})).status_code == 401
    rotated = await world.a["developer"].client.post(f"/api/v1/devices/{dev.id}/credentials")
    assert rotated.status_code == 201
    assert (await api.post(f"/api/v1/{dev.token}/telemetry", json={"a": 1})).status_code == 401
    new_token = rotated.json()["token"]
    r = await world.a["developer"].client.patch(
        f"/api/v1/devices/{dev.id}", json={"status": "disabled"}
    )
    assert r.status_code == 200
    r = await api.post(f"/api/v1/{new_token}/telemetry", json={"a": 2})
    assert r.status_code == 403, r.text
    r = await world.a["developer"].client.patch(
        f"/api/v1/devices/{dev.id}", json={"status": "enabled"}
    )
    assert (await api.post(f"/api/v1/{new_token}/telemetry", json={"a": 1})).status_code == 200


async def test_daily_quota_refuses_over_http_without_overshoot(
    factory: Factory, owner_engine: AsyncEngine
) -> None:
    tenant = await factory.tenant(max_telemetry_points_per_day=3)
    developer = await factory.member(tenant, "developer")
    dev = await make_device(factory, developer)
    api = factory.client()
    ok = await api.post(f"/api/v1/{dev.token}/telemetry", json={"a": 1, "b": 2})
    assert ok.status_code == 200
    over = await api.post(f"/api/v1/{dev.token}/telemetry", json={"c": 3, "d": 4})
    assert over.status_code == 429, over.text
    assert over.json()["code"] == "quota_exceeded"
    assert sorted(await stored_points(owner_engine, dev.id)) == ["a", "b"]


async def test_client_attributes_and_attribute_requests(factory: Factory, world: World) -> None:
    dev = await make_device(factory, world.a["developer"])
    api = factory.client()
    r = await api.post(
        f"/api/v1/{dev.token}/attributes",
        json={"fw": "1.0.3", "slot": "7", "cfg": {"a": [1]}, "skip": None},
    )
    assert r.status_code == 200, r.text
    r = await world.a["developer"].client.post(
        f"/api/v1/devices/{dev.id}/attributes/shared", json={"interval": 5, "mode": "eco"}
    )
    assert r.status_code == 200, r.text
    r = await world.a["developer"].client.post(
        f"/api/v1/devices/{dev.id}/attributes/server", json={"secret_note": "not for devices"}
    )
    assert r.status_code == 200, r.text

    async def ask(**params: str) -> object:
        got = await api.get(f"/api/v1/{dev.token}/attributes", params=params)
        assert got.status_code == 200, got.text
        return got.json()

    assert await ask() == {
        "client": {"cfg": {"a": [1]}, "fw": "1.0.3", "slot": 7},
        "shared": {"interval": 5, "mode": "eco"},
    }
    assert await ask(clientKeys="fw", sharedKeys="mode") == {
        "client": {"fw": "1.0.3"},
        "shared": {"mode": "eco"},
    }
    assert await ask(sharedKeys="interval,missing") == {"shared": {"interval": 5}}
    assert await ask(clientKeys="missing") == {}
    bad = await api.post(f"/api/v1/{dev.token}/attributes", json=[1, 2])
    assert bad.status_code == 422


async def test_client_side_rpc(factory: Factory, world: World) -> None:
    gateway = await make_device(factory, world.a["developer"], is_gateway=True)
    api = factory.client()
    r = await api.post(
        f"/api/v1/{gateway.token}/rpc", json={"method": "getSessionLimits", "params": {}}
    )
    assert r.status_code == 200, r.text
    limits = r.json()
    assert {"maxPayloadSize", "maxInflightMessages", "rateLimits", "gatewayRateLimits"} <= set(
        limits
    )
    assert set(limits["rateLimits"]) == {"messages", "telemetryMessages", "telemetryDataPoints"}
    before = int(time.time() * 1000)
    r = await api.post(f"/api/v1/{gateway.token}/rpc", json={"method": "getCurrentTime"})
    assert before <= r.json()["currentTime"] <= int(time.time() * 1000)
    r = await api.post(f"/api/v1/{gateway.token}/rpc", json={"method": "reboot"})
    assert r.status_code == 404
    r = await api.post(f"/api/v1/{gateway.token}/rpc", json={"params": 1})
    assert r.status_code == 422


async def test_shared_attribute_long_poll(factory: Factory, world: World) -> None:
    dev = await make_device(factory, world.a["developer"])
    api = factory.client()
    developer = world.a["developer"].client
    await developer.post(f"/api/v1/devices/{dev.id}/attributes/shared", json={"old": 1})
    poll = asyncio.create_task(
        api.get(f"/api/v1/{dev.token}/attributes/updates", params={"timeout": 5000})
    )
    await attached(factory.rt, dev.id)
    r = await developer.post(f"/api/v1/devices/{dev.id}/attributes/shared", json={"sp": 7})
    assert r.status_code == 200
    got = await poll
    assert got.status_code == 200, got.text
    assert got.json() == {"sp": 7}
    poll = asyncio.create_task(
        api.get(f"/api/v1/{dev.token}/attributes/updates", params={"timeout": 5000})
    )
    await attached(factory.rt, dev.id)
    r = await developer.delete(
        f"/api/v1/devices/{dev.id}/attributes/shared", params={"keys": "old"}
    )
    assert r.status_code == 204
    assert (await poll).json() == {"deleted": ["old"]}
    quiet = await api.get(f"/api/v1/{dev.token}/attributes/updates", params={"timeout": 50})
    assert quiet.status_code == 408
