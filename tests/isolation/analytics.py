"""Isolation providers for the analytics routes: tenant B's device with readings of a metric."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.fixtures.factories import Factory, World
from tests.isolation.registry import provider


@provider(
    "/api/v1/analytics/timeseries/{device_id}/{metric}",
    "/api/v1/analytics/trends/{device_id}/{metric}",
    "/api/v1/analytics/statistics/{device_id}/{metric}",
    "/api/v1/analytics/correlation/{device_id}",
    "/api/v1/analytics/forecast/{device_id}/{metric}",
)
async def other_device_metric(factory: Factory, world: World) -> dict[str, str]:
    r = await world.b_admin.client.post("/api/v1/devices", json={"name": "beta-kiln-analytics"})
    assert r.status_code == 201, r.text
    device = r.json()
    now = datetime.now(UTC)
    sender = factory.client({"X-API-Key": device["token"]})
    for i, value in enumerate((401.25, 402.5, 404.75)):
        sent = await sender.post(
            "/api/v1/telemetry",
            json={
                "timestamp": (now - timedelta(minutes=3 - i)).isoformat(),
                "telemetry": {"beta_kiln_temp": value, "beta_kiln_fan": value / 2},
            },
        )
        assert sent.status_code == 201, sent.text
    world.b_markers += [device["id"], "beta-kiln-analytics", "401.25", "404.75"]
    return {"device_id": device["id"], "metric": "beta_kiln_temp"}
