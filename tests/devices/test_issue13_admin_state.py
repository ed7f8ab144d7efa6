"""A device's administrative state and its connectivity are separate fields (issue 13)."""

from __future__ import annotations

from tests.devices.support import make_device
from tests.fixtures.factories import Factory, World


async def test_enabled_and_connectivity_read_back_separately(
    factory: Factory, world: World
) -> None:
    dev = world.a["developer"].client
    device = await make_device(factory, world.a["developer"], status="enabled")
    assert device.body["enabled"] is True
    assert device.body["connectivity"] == "offline"
    assert device.body["status"] == "offline"  # legacy summary, readable as before
    r = await device.client.post("/api/v1/telemetry", json={"telemetry": {"t": 1}})
    assert r.status_code == 201
    body = (await dev.get(f"/api/v1/devices/{device.id}")).json()
    assert (body["enabled"], body["connectivity"], body["status"]) == (True, "online", "online")

    r = await dev.patch(f"/api/v1/devices/{device.id}", json={"enabled": False})
    assert r.status_code == 200, r.text
    body = r.json()
    # A disabled device that was heard from a moment ago: both facts are visible.
    assert (body["enabled"], body["connectivity"], body["status"]) == (False, "online", "disabled")
    r = await device.client.post("/api/v1/telemetry", json={"telemetry": {"t": 2}})
    assert r.status_code == 403

    # The original clients' writes keep working.
    r = await dev.patch(f"/api/v1/devices/{device.id}", json={"status": "enabled"})
    assert r.json()["enabled"] is True
    r = await dev.patch(f"/api/v1/devices/{device.id}", json={"status": "disabled"})
    assert r.json()["enabled"] is False
    r = await dev.patch(
        f"/api/v1/devices/{device.id}", json={"enabled": True, "status": "disabled"}
    )
    assert r.status_code == 422
    created = await dev.post("/api/v1/devices", json={"name": "off", "enabled": False})
    assert created.json()["enabled"] is False
    assert created.json()["status"] == "disabled"
