"""First end-to-end pass over the HTTP device API: telemetry, attributes, RPC."""

from __future__ import annotations

import asyncio

from tests.devices.support import make_device
from tests.fixtures.factories import Factory, World


async def test_http_device_api_round_trip(factory: Factory, world: World) -> None:
    dev = await make_device(factory, world.a["developer"])
    api = factory.client()
    r = await api.post(f"/api/v1/{dev.token}/telemetry", json={"temperature": "21.5", "on": True})
    assert r.status_code == 200, r.text
    assert r.json()["points"] == 2
    r = await api.post(f"/api/v1/{dev.token}/attributes", json={"fw": "1.0.3", "slot": "7"})
    assert r.status_code == 200, r.text
    r = await world.a["developer"].client.post(
        f"/api/v1/devices/{dev.id}/attributes/shared", json={"interval": 5}
    )
    assert r.status_code == 200, r.text
    r = await api.get(f"/api/v1/{dev.token}/attributes")
    assert r.json() == {"client": {"fw": "1.0.3", "slot": 7}, "shared": {"interval": 5}}

    poll = asyncio.create_task(api.get(f"/api/v1/{dev.token}/rpc", params={"timeout": 5000}))
    await asyncio.sleep(0.2)
    call = asyncio.create_task(
        world.a["operator"].client.post(
            f"/api/v1/devices/{dev.id}/rpc", json={"method": "setValve", "params": {"open": 1}}
        )
    )
    got = await poll
    assert got.status_code == 200, got.text
    request = got.json()
    assert request["method"] == "setValve"
    r = await api.post(f"/api/v1/{dev.token}/rpc/{request['id']}", json={"ok": True})
    assert r.status_code == 200, r.text
    answered = await call
    assert answered.status_code == 200, answered.text
    assert answered.json()["response"] == {"ok": True}
