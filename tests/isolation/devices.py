"""Isolation providers for devices: tenant B's device, with a token and telemetry."""

from __future__ import annotations

from tests.fixtures.factories import Factory, World
from tests.isolation.registry import provider


@provider("/api/v1/devices/{id}", "/api/v1/devices/{id}/credentials")
async def other_device(factory: Factory, world: World) -> dict[str, str]:
    r = await world.b_admin.client.post(
        "/api/v1/devices",
        json={
            "name": "beta-boiler-7",
            "area": "beta-hall",
            "location": "beta-basement",
            "metadata": {"serial": "BETA-SN-0042"},
        },
    )
    assert r.status_code == 201, r.text
    device = r.json()
    sent = await factory.client({"X-API-Key": device["token"]}).post(
        "/api/v1/telemetry", json={"telemetry": {"beta_pressure_kpa": 812.5}}
    )
    assert sent.status_code == 201, sent.text
    world.b_markers += [
        device["id"],
        "beta-boiler-7",
        "beta-hall",
        "beta-basement",
        "BETA-SN-0042",
        "beta_pressure_kpa",
        device["token"],
    ]
    return {"id": device["id"]}
