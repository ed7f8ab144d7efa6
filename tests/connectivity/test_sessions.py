"""Live sessions: closed within a second when their credential stops holding; online and
offline follow connect and disconnect."""

from __future__ import annotations

import asyncio

from iiot.connectivity import service
from iiot.connectivity.hub import hub
from tests.connectivity.support import RecordingSession
from tests.devices.support import make_device
from tests.fixtures.factories import Factory, World


async def _session(factory: Factory, token: str, name: str | None = None) -> RecordingSession:
    identity = await service.authenticate(factory.rt, token)
    if name is not None:
        identity = await service.gateway_device(factory.rt, identity, name)
    session = RecordingSession(identity.device_id, identity.tenant_id)
    sessions = hub(factory.rt)
    await sessions.wait_listening()
    sessions.attach(session, identity)
    return session


async def test_rotation_deletion_and_gateway_change_close_sessions(
    factory: Factory, world: World
) -> None:
    developer = world.a["developer"].client
    dev = await make_device(factory, developer=world.a["developer"])
    other = await make_device(factory, world.a["developer"])
    gw = await make_device(factory, world.a["developer"], is_gateway=True)
    device_session = await _session(factory, dev.token)
    bystander = await _session(factory, other.token)
    gateway_session = await _session(factory, gw.token)
    sub_session = await _session(factory, gw.token, "Pump 4")

    await developer.post(f"/api/v1/devices/{dev.id}/credentials")
    assert await asyncio.wait_for(device_session.closed, 1.0) == "token revoked"
    assert device_session not in hub(factory.rt).sessions(dev.id)

    await developer.patch(f"/api/v1/devices/{gw.id}", json={"is_gateway": False})
    assert await asyncio.wait_for(gateway_session.closed, 1.0) == "no longer a gateway"
    assert await asyncio.wait_for(sub_session.closed, 1.0) == "no longer a gateway"

    await developer.delete(f"/api/v1/devices/{other.id}")
    assert await asyncio.wait_for(bystander.closed, 1.0) in ("token revoked", "device deleted")


async def test_disabling_or_suspending_closes_sessions(factory: Factory, world: World) -> None:
    dev = await make_device(factory, world.a["developer"])
    b_dev = await make_device(factory, world.b_admin)
    disabled = await _session(factory, dev.token)
    await world.a["developer"].client.patch(
        f"/api/v1/devices/{dev.id}", json={"status": "disabled"}
    )
    assert await asyncio.wait_for(disabled.closed, 1.0) == "device disabled"

    b_session = await _session(factory, b_dev.token)
    a_dev = await make_device(factory, world.a["developer"])
    a_session = await _session(factory, a_dev.token)
    r = await world.system_admin.client.post(f"/api/v1/tenants/{world.tenant_b.id}/suspend")
    assert r.status_code == 200, r.text
    assert await asyncio.wait_for(b_session.closed, 1.0) == "tenant suspended"
    await asyncio.sleep(0.1)
    assert not a_session.closed.done()  # tenant A is not affected
    hub(factory.rt).detach(a_session)


async def test_online_and_offline_follow_the_session(factory: Factory, world: World) -> None:
    dev = await make_device(factory, world.a["developer"])
    viewer = world.a["viewer"].client

    async def status() -> str:
        return str((await viewer.get(f"/api/v1/devices/{dev.id}")).json()["status"])

    async def listed(state: str) -> list[str]:
        r = await viewer.get("/api/v1/devices", params={"status": state})
        return [d["id"] for d in r.json()["devices"]]

    assert await status() == "offline"
    identity = await service.authenticate(factory.rt, dev.token)
    session = RecordingSession(identity.device_id, identity.tenant_id)
    hub(factory.rt).attach(session, identity)
    await service.device_connected(factory.rt, identity)
    assert await status() == "online"
    assert str(dev.id) in await listed("online")
    hub(factory.rt).detach(session)
    await service.device_disconnected(factory.rt, identity)
    assert await status() == "offline"
    assert str(dev.id) in await listed("offline")
    last_seen = (await viewer.get(f"/api/v1/devices/{dev.id}")).json()["last_seen"]
    assert last_seen is not None
    # Data after the session closed makes it online again.
    await factory.client().post(f"/api/v1/{dev.token}/telemetry", json={"v": 1})
    assert await status() == "online"
