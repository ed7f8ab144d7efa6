from __future__ import annotations

from tests.devices.support import make_device
from tests.fixtures.factories import Factory, World


async def test_create_get_ingest(factory: Factory, world: World) -> None:
    dev = await make_device(factory, world.a["developer"], area="north", type="sensor")
    r = await dev.client.post("/api/v1/telemetry", json={"telemetry": {"temp": 21.5, "state": "RUNNING", "ok": True}})
    assert r.status_code == 201, r.text
    assert r.json() == {"points": 3, "duplicates": 0}
    r = await world.a["viewer"].client.get(f"/api/v1/devices/{dev.id}")
    assert r.status_code == 200, r.text
    body = r.json()
    print(body)
    assert body["latest_telemetry"]["temp"]["value"] == 21.5
    assert body["status"] == "online"
