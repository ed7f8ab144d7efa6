"""Free-form JSON and limits refused before anything is written (issue 13, defects 1, 2, 4)."""

from __future__ import annotations

from typing import Any

import pytest

from iiot.validation import MAX_JSON_DEPTH
from tests.devices.support import make_device
from tests.fixtures.factories import Factory, World


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


async def test_deeply_nested_tenant_settings_are_refused_and_reads_keep_working(
    world: World,
) -> None:
    admin, sysadmin = world.a["admin"], world.system_admin
    path = f"/api/v1/tenants/{world.tenant_a.id}"
    before = (await admin.client.get(path)).json()["settings"]
    for depth in (MAX_JSON_DEPTH + 1, 260):
        r = await admin.client.patch(path, json={"settings": nested(depth)})
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == "settings"
    r = await admin.client.get(path)
    assert r.status_code == 200
    assert r.json()["settings"] == before
    assert (await sysadmin.client.get("/api/v1/tenants")).status_code == 200
    ok = await admin.client.patch(path, json={"settings": {"s": nested(MAX_JSON_DEPTH - 1)}})
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("field", ["config", "metadata"])
@pytest.mark.parametrize(
    "raw",
    [
        '{"name": "x", "FIELD": {"\\ud800": 1}}',
        '{"name": "x", "FIELD": {"k": "\\udfff"}}',
        '{"name": "x", "FIELD": {"k": ["a", {"b": "\\ud83d"}]}}',
    ],
)
async def test_lone_surrogates_in_device_json_are_refused(
    world: World, field: str, raw: str
) -> None:
    dev = world.a["developer"]
    r = await dev.client.post(
        "/api/v1/devices",
        content=raw.replace("FIELD", field).encode(),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422, r.text
    assert (await dev.client.get("/api/v1/devices")).json()["total"] == 0


@pytest.mark.parametrize("field", ["config", "metadata"])
async def test_deeply_nested_device_json_is_refused(
    factory: Factory, world: World, field: str
) -> None:
    dev = world.a["developer"]
    r = await dev.client.post("/api/v1/devices", json={"name": "x", field: nested(260)})
    assert r.status_code == 422, r.text
    device = await make_device(factory, dev)
    r = await dev.client.patch(f"/api/v1/devices/{device.id}", json={field: nested(260)})
    assert r.status_code == 422, r.text
    r = await dev.client.get(f"/api/v1/devices/{device.id}")
    assert r.status_code == 200
    assert r.json()[field] == {}


@pytest.mark.parametrize("days", [36_501, 1_000_000, 2_147_483_647, 0, -1])
async def test_retention_out_of_range_is_refused_for_tiers_and_tenants(
    world: World, days: int
) -> None:
    sysadmin = world.system_admin
    r = await sysadmin.client.patch("/api/v1/tiers/professional", json={"max_retention_days": days})
    assert r.status_code == 422, r.text
    r = await sysadmin.client.patch(
        f"/api/v1/tenants/{world.tenant_a.id}", json={"max_retention_days": days}
    )
    assert r.status_code == 422, r.text
    tiers = {t["name"]: t for t in (await sysadmin.client.get("/api/v1/tiers")).json()}
    assert tiers["professional"]["max_retention_days"] == 90


async def test_retention_at_the_bound_keeps_ingest_working(factory: Factory, world: World) -> None:
    sysadmin = world.system_admin
    r = await sysadmin.client.patch(
        f"/api/v1/tenants/{world.tenant_a.id}", json={"max_retention_days": 36_500}
    )
    assert r.status_code == 200, r.text
    device = await make_device(factory, world.a["developer"])
    r = await device.client.post("/api/v1/telemetry", json={"telemetry": {"t": 1}})
    assert r.status_code == 201, r.text
