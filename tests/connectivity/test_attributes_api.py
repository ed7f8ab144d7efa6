"""Attributes through the REST API: scopes, roles, audit, and pushes to live sessions."""

from __future__ import annotations

import asyncio
from datetime import datetime

from iiot.connectivity.hub import hub
from tests.connectivity.support import RecordingSession
from tests.devices.support import make_device
from tests.fixtures.factories import Factory, World


async def test_scopes_and_the_view(factory: Factory, world: World) -> None:
    dev = await make_device(factory, world.a["developer"])
    developer = world.a["developer"].client
    await factory.client().post(f"/api/v1/{dev.token}/attributes", json={"fw": "2.1"})
    r = await developer.post(
        f"/api/v1/devices/{dev.id}/attributes/shared", json={"sp": 21.5, "cfg": {"a": [1, 2]}}
    )
    assert r.status_code == 200, r.text
    r = await developer.post(f"/api/v1/devices/{dev.id}/attributes/server", json={"zone": "B4"})
    assert r.status_code == 200, r.text
    view = (await world.a["viewer"].client.get(f"/api/v1/devices/{dev.id}/attributes")).json()
    assert {scope: {k: v["value"] for k, v in keys.items()} for scope, keys in view.items()} == {
        "client": {"fw": 2.1},
        "shared": {"sp": 21.5, "cfg": {"a": [1, 2]}},
        "server": {"zone": "B4"},
    }
    assert datetime.fromisoformat(view["server"]["zone"]["updated_at"]).tzinfo is not None
    # Users never write the device's own scope; bodies must be JSON objects of sane keys.
    r = await developer.post(f"/api/v1/devices/{dev.id}/attributes/client", json={"fw": "x"})
    assert r.status_code == 422
    for bad in ([1, 2], {"": 1}, {"k" * 300: 1}, {"big": "x" * 20_000}):
        r = await developer.post(f"/api/v1/devices/{dev.id}/attributes/shared", json=bad)
        assert r.status_code == 422, (bad, r.text)
    r = await developer.delete(
        f"/api/v1/devices/{dev.id}/attributes/client", params={"keys": "fw,unknown"}
    )
    assert r.status_code == 204
    r = await developer.delete(f"/api/v1/devices/{dev.id}/attributes/server")
    assert r.status_code == 422  # keys are required
    view = (await developer.get(f"/api/v1/devices/{dev.id}/attributes")).json()
    assert view["client"] == {}
    assert set(view["shared"]) == {"sp", "cfg"}


async def test_roles_and_audit(factory: Factory, world: World) -> None:
    dev = await make_device(factory, world.a["developer"])
    url = f"/api/v1/devices/{dev.id}/attributes"
    for role in ("viewer", "operator"):
        client = world.a[role].client
        assert (await client.get(url)).status_code == 200
        assert (await client.post(f"{url}/shared", json={"a": 1})).status_code == 403
        r = await client.delete(f"{url}/shared", params={"keys": "a"})
        assert r.status_code == 403
    for role in ("developer", "admin"):
        r = await world.a[role].client.post(f"{url}/server", json={"by": role})
        assert r.status_code == 200, r.text
    # A device token is not a user: it cannot reach the user routes.
    assert (await dev.client.get(url)).status_code in (401, 403)
    r = await world.a["admin"].client.delete(f"{url}/server", params={"keys": "by"})
    assert r.status_code == 204
    trail = await world.a["admin"].client.get(
        f"/api/v1/tenants/{world.tenant_a.id}/audit", params={"limit": 50}
    )
    events = [
        (e["action"], e["before"], e["after"])
        for e in trail.json()["events"]
        if e["action"].startswith("device.attributes") and e["target_id"] == str(dev.id)
    ]
    assert sorted(events, key=str) == sorted(
        [
            (
                "device.attributes.update",
                {"scope": "server", "values": {}},
                {"scope": "server", "values": {"by": "developer"}},
            ),
            (
                "device.attributes.update",
                {"scope": "server", "values": {"by": "developer"}},
                {"scope": "server", "values": {"by": "admin"}},
            ),
            ("device.attributes.delete", {"scope": "server", "values": {"by": "admin"}}, None),
        ],
        key=str,
    )


async def test_other_tenants_device_is_404(factory: Factory, world: World) -> None:
    other = await make_device(factory, world.b_admin)
    for method, path, body in (
        ("GET", "", None),
        ("POST", "/shared", {"a": 1}),
        ("DELETE", "/shared?keys=a", None),
    ):
        r = await world.a["admin"].client.request(
            method, f"/api/v1/devices/{other.id}/attributes{path}", json=body
        )
        assert r.status_code == 404, (method, path, r.text)


async def test_shared_changes_are_pushed_to_live_sessions(factory: Factory, world: World) -> None:
    dev = await make_device(factory, world.a["developer"])
    bystander = await make_device(factory, world.a["developer"])
    sessions = hub(factory.rt)
    await sessions.wait_listening()
    mine = RecordingSession(dev.id, world.tenant_a.id)
    theirs = RecordingSession(bystander.id, world.tenant_a.id)
    sessions.attach(mine)
    sessions.attach(theirs)
    try:
        developer = world.a["developer"].client
        url = f"/api/v1/devices/{dev.id}/attributes"
        await developer.post(f"{url}/shared", json={"sp": 20, "mode": "eco"})
        assert await asyncio.wait_for(mine.attributes.get(), 5) == (
            {"mode": "eco", "sp": 20},
            [],
        )
        await developer.post(f"{url}/server", json={"private": 1})  # never pushed
        await developer.delete(f"{url}/shared", params={"keys": "mode,nothing"})
        assert await asyncio.wait_for(mine.attributes.get(), 5) == ({}, ["mode"])
        await developer.post(f"{url}/shared", json={"sp": 22})
        assert await asyncio.wait_for(mine.attributes.get(), 5) == ({"sp": 22}, [])
        assert mine.attributes.empty()
        assert theirs.attributes.empty()
    finally:
        sessions.detach(mine)
        sessions.detach(theirs)
