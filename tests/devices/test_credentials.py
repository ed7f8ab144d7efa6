"""Device tokens: rotation revokes at once, also in another process that had cached the token."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from iiot.app import MODULES, create_app
from iiot.devices.token_cache import token_cache
from iiot.identity.tokens import digest
from iiot.runtime import Runtime
from tests.devices.support import make_device
from tests.fixtures.factories import Factory, World

POINT = {"telemetry": {"v": 1.0}}


async def test_rotation_revokes_the_old_token_at_once(
    factory: Factory, world: World, owner_engine: AsyncEngine
) -> None:
    dev = await make_device(factory, world.a["developer"])
    assert (await dev.client.post("/api/v1/telemetry", json=POINT)).status_code == 201
    r = await world.a["developer"].client.post(f"/api/v1/devices/{dev.id}/credentials")
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["token"].startswith("dt_")
    assert new["token"] != dev.token
    assert new["revoked"] == 1
    assert new["device_id"] == str(dev.id)
    old = await dev.client.post("/api/v1/telemetry", json=POINT)
    assert old.status_code == 401
    assert old.json()["code"] == "unauthorized"
    fresh = factory.client({"Authorization": f"Bearer {new['token']}"})
    assert (await fresh.post("/api/v1/telemetry", json=POINT)).status_code == 201
    async with owner_engine.connect() as conn:
        actions = (
            await conn.execute(
                text("select action from audit_events where target_id = :d"), {"d": str(dev.id)}
            )
        ).scalars()
        assert "device.credentials.rotate" in set(actions)


async def test_unknown_and_malformed_device_tokens_are_refused(factory: Factory) -> None:
    for headers in (
        {"X-API-Key": "dt_" + "A" * 43},
        {"Authorization": "Bearer dt_nope"},
        {"X-API-Key": "dt_" + "x" * 5000},
    ):
        r = await factory.client(headers).post("/api/v1/telemetry", json=POINT)
        assert r.status_code == 401, r.text


async def test_revocation_reaches_a_second_process_that_cached_the_token(
    factory: Factory, world: World, runtime: Runtime
) -> None:
    dev = await make_device(factory, world.a["developer"])
    # A second process: its own runtime (pool, caches, listener) on the same database.
    other = Runtime.build(runtime.settings, runtime.db.url, MODULES)
    other_app = create_app(runtime=other)
    cache = token_cache(other)
    try:
        await cache.wait_listening()
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=other_app),
            base_url="http://other",
            headers={"X-API-Key": dev.token},
        ) as client:
            assert (await client.post("/api/v1/telemetry", json=POINT)).status_code == 201
            assert await cache.owner(digest(dev.token)) is not None
            assert digest(dev.token) in cache._entries  # cached in the second process

            r = await world.a["developer"].client.post(f"/api/v1/devices/{dev.id}/credentials")
            assert r.status_code == 201

            # Refused on the very next request, notification delivered or not.
            refused = await client.post("/api/v1/telemetry", json=POINT)
            assert refused.status_code == 401, refused.text
            # And the notification evicts the cached entry.
            for _ in range(100):
                if digest(dev.token) not in cache._entries:
                    break
                await asyncio.sleep(0.02)
            assert digest(dev.token) not in cache._entries
            assert await cache.owner(digest(dev.token)) is None
    finally:
        await cache.stop()
        await other.db.dispose()


async def test_cache_is_bypassed_while_the_listener_is_down(
    factory: Factory, world: World, runtime: Runtime
) -> None:
    dev = await make_device(factory, world.a["developer"])
    other = Runtime.build(runtime.settings, runtime.db.url, MODULES)
    cache = token_cache(other)
    try:
        await cache.wait_listening()
        assert await cache.owner(digest(dev.token)) is not None
        await cache.stop()  # listener gone: entries dropped, no caching
        assert not cache.listening
        assert cache._entries == {}
        cache._task = asyncio.create_task(asyncio.sleep(3600))  # keep start() from reviving it
        assert await cache.owner(digest(dev.token)) is not None
        assert cache._entries == {}
        cache._task.cancel()
    finally:
        await cache.stop()
        await other.db.dispose()


async def test_delete_revokes_the_token(factory: Factory, world: World) -> None:
    dev = await make_device(factory, world.a["developer"])
    assert (await dev.client.post("/api/v1/telemetry", json=POINT)).status_code == 201
    r = await world.a["developer"].client.delete(f"/api/v1/devices/{dev.id}")
    assert r.status_code == 204
    assert (await dev.client.post("/api/v1/telemetry", json=POINT)).status_code == 401


async def test_shutdown_flushes_presence_and_stops_the_listener(
    factory: Factory, world: World, runtime: Runtime, owner_engine: AsyncEngine
) -> None:
    from iiot.jobs import scheduler

    other = Runtime.build(runtime.settings, runtime.db.url, MODULES)
    other_app = create_app(runtime=other)
    dev = await make_device(factory, world.a["developer"])
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=other_app),
            base_url="http://other",
            headers={"X-API-Key": dev.token},
        ) as client:
            assert (await client.post("/api/v1/telemetry", json=POINT)).status_code == 201
        await scheduler.run_shutdown_hooks(other)
        assert not token_cache(other).listening
        async with owner_engine.connect() as conn:
            seen = (
                await conn.execute(
                    text("select last_seen_at from devices where id = :d"), {"d": dev.id}
                )
            ).scalar_one()
        assert seen is not None
    finally:
        await token_cache(other).stop()
        await other.db.dispose()
