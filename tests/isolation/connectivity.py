"""Isolation providers for attributes and RPC: tenant B's device with attributes and a call."""

from __future__ import annotations

import uuid

from iiot.connectivity import rpc_service
from iiot.connectivity.schemas import RpcIn
from iiot.tenancy.context import system_context
from tests.fixtures.factories import Factory, World
from tests.isolation.registry import provider


@provider(
    "/api/v1/devices/{id}/attributes",
    "/api/v1/devices/{id}/attributes/{scope}",
    "/api/v1/devices/{id}/rpc",
    "/api/v1/devices/{id}/rpc/{rpc_id}",
)
async def other_device_with_attributes_and_rpc(factory: Factory, world: World) -> dict[str, str]:
    admin = world.b_admin.client
    r = await admin.post("/api/v1/devices", json={"name": "beta-valve-9", "is_gateway": True})
    assert r.status_code == 201, r.text
    device = r.json()
    r = await admin.post(
        f"/api/v1/devices/{device['id']}/attributes/shared",
        json={"beta_setpoint_key": "BETA-SETPOINT-77"},
    )
    assert r.status_code == 200, r.text
    r = await admin.post(
        f"/api/v1/devices/{device['id']}/attributes/server",
        json={"beta_server_key": "BETA-SERVER-55"},
    )
    assert r.status_code == 200, r.text
    sent = await factory.client().post(
        f"/api/v1/{device['token']}/attributes", json={"beta_client_key": "BETA-CLIENT-33"}
    )
    assert sent.status_code == 200, sent.text
    # A recorded call (written directly: delivering one needs a live device session).
    ctx = system_context(uuid.UUID(device["tenant_id"]))
    async with factory.rt.db.tenant(ctx) as session:
        row = await rpc_service.create(
            session,
            ctx,
            uuid.UUID(device["id"]),
            RpcIn(method="betaSecretMethod", params={"beta_param": "BETA-PARAM-11"}),
        )
    world.b_markers += [
        device["id"],
        "beta-valve-9",
        "beta_setpoint_key",
        "BETA-SETPOINT-77",
        "beta_server_key",
        "BETA-SERVER-55",
        "beta_client_key",
        "BETA-CLIENT-33",
        "betaSecretMethod",
        "BETA-PARAM-11",
        device["token"],
    ]
    return {"id": device["id"], "scope": "shared", "rpc_id": str(row.id)}
