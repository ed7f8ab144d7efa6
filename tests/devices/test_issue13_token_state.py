"""A device token answers the right reason at once after its tenant changes (issue 13, #6)."""

from __future__ import annotations

from iiot.devices.token_cache import token_cache
from tests.devices.support import make_device
from tests.fixtures.factories import Factory, World


async def test_suspended_tenant_is_reported_at_once_not_as_an_invalid_token(
    factory: Factory, world: World
) -> None:
    cache = token_cache(factory.rt)
    await cache.wait_listening()
    device = await make_device(factory, world.a["developer"])
    for _ in range(2):  # the second answer comes from the cache
        r = await device.client.post("/api/v1/telemetry", json={"telemetry": {"t": 1}})
        assert r.status_code == 201, r.text
    r = await world.system_admin.client.post(f"/api/v1/tenants/{world.tenant_a.id}/suspend")
    assert r.status_code == 200, r.text
    r = await device.client.post("/api/v1/telemetry", json={"telemetry": {"t": 2}})
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "tenant_suspended"
    r = await world.system_admin.client.post(f"/api/v1/tenants/{world.tenant_a.id}/activate")
    assert r.status_code == 200
    r = await device.client.post("/api/v1/telemetry", json={"telemetry": {"t": 3}})
    assert r.status_code == 201, r.text


async def test_the_write_transaction_refusal_is_explained(factory: Factory, world: World) -> None:
    """Even with the notification not yet delivered, the write answers the true reason."""
    cache = token_cache(factory.rt)
    await cache.wait_listening()
    device = await make_device(factory, world.a["developer"])
    r = await device.client.post("/api/v1/telemetry", json={"telemetry": {"t": 1}})
    assert r.status_code == 201
    await cache.stop()  # no notification will arrive; entries are kept only while listening
    cache.start()
    await cache.wait_listening()
    await device.client.post("/api/v1/telemetry", json={"telemetry": {"t": 1}})  # cached again
    cache.on_notification = lambda payload: None  # type: ignore[method-assign]
    try:
        r = await world.system_admin.client.post(f"/api/v1/tenants/{world.tenant_a.id}/suspend")
        assert r.status_code == 200
        r = await device.client.post("/api/v1/telemetry", json={"telemetry": {"t": 2}})
        assert r.status_code == 403, r.text
        assert r.json()["code"] == "tenant_suspended"
    finally:
        del cache.on_notification
