"""Bad input that used to answer 500: datetimes at the calendar's edges, many series."""

from __future__ import annotations

from datetime import timedelta

import pytest

from iiot.telemetry.query_service import MAX_LIMIT
from tests.devices.support import make_device
from tests.fixtures.factories import Factory, World
from tests.telemetry.test_query import T0, seed_device, seed_points

PROBLEM = "application/problem+json"


@pytest.mark.parametrize("route", ["", "/aggregate", "/statistics"])
@pytest.mark.parametrize(
    "bound",
    [
        {"end": "0001-01-01T00:00:00Z"},
        {"start": "0001-01-01T00:00:00Z"},
        {"end": "9999-12-31T23:59:59-01:00"},
        {"start": "9999-12-31T23:59:59Z", "end": "9999-12-31T23:59:59-01:00"},
        {"start": "0001-01-01T00:00:00+01:00"},
    ],
)
async def test_query_datetimes_at_the_calendar_edges_are_refused(
    world: World, route: str, bound: dict[str, str]
) -> None:
    viewer = world.a["viewer"]
    device_id = await seed_device(viewer.client._transport.app.state.runtime, world.tenant_a.id)  # type: ignore[attr-defined]
    params = {"device_id": str(device_id), "key": "t", "interval": "1h", **bound}
    r = await viewer.client.get(f"/api/v1/telemetry{route}", params=params)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM


@pytest.mark.parametrize(
    "timestamp",
    ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00Z"],
)
async def test_ingest_timestamps_at_the_calendar_edges_are_refused(
    factory: Factory, world: World, timestamp: str
) -> None:
    device = await make_device(factory, world.a["developer"])
    r = await device.client.post(
        "/api/v1/telemetry", json={"timestamp": timestamp, "telemetry": {"t": 1}}
    )
    assert r.status_code == 422, r.text
    r = await device.client.post(
        "/api/v1/telemetry", json={"points": [{"ts": timestamp, "values": {"t": 1}}]}
    )
    assert r.status_code in (400, 422), r.text


async def test_tenant_wide_latest_with_more_series_than_the_limit(world: World) -> None:
    rt = world.a["viewer"].client._transport.app.state.runtime  # type: ignore[attr-defined]
    device_id = await seed_device(rt, world.tenant_a.id)
    await seed_points(
        rt,
        world.tenant_a.id,
        device_id,
        [(f"k{i:05d}", T0 + timedelta(seconds=i), i) for i in range(1050)],
    )
    r = await world.a["viewer"].client.get("/api/v1/telemetry/latest")
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["values"]) == 1000
    assert body["truncated"] is True
    r = await world.a["viewer"].client.get("/api/v1/telemetry/latest", params={"limit": MAX_LIMIT})
    assert r.status_code == 200, r.text
    assert len(r.json()["values"]) == 1050


async def test_tenant_wide_latest_with_many_devices(world: World) -> None:
    rt = world.a["viewer"].client._transport.app.state.runtime  # type: ignore[attr-defined]
    for d in range(3):
        device_id = await seed_device(rt, world.tenant_a.id, name=f"d{d}")
        await seed_points(
            rt,
            world.tenant_a.id,
            device_id,
            [(f"key-{i}", T0 - timedelta(days=i % 40, seconds=i), float(i)) for i in range(700)],
        )
    for limit in (None, 1000, 1001, 2100, 10000):
        params = {"limit": limit} if limit else {}
        r = await world.a["viewer"].client.get("/api/v1/telemetry/latest", params=params)
        assert r.status_code == 200, r.text
