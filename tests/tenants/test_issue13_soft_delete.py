"""Deleting a tenant can be undone for 30 days; system admins keep working (issue 13)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncEngine

from iiot.tenants.service import purge_deleted_tenants
from tests.devices.support import make_device
from tests.fixtures.factories import PASSWORD, Factory, World
from tests.users.helpers import execute


async def test_delete_needs_the_slug_and_restore_brings_the_data_back(
    factory: Factory, world: World, owner_engine: AsyncEngine
) -> None:
    admin = world.system_admin.client
    tenant = world.tenant_a
    device = await make_device(factory, world.a["developer"], name="kept-through-restore")
    path = f"/api/v1/tenants/{tenant.id}"
    for params in ({}, {"confirm": "wrong-slug"}, {"confirm": tenant.slug.upper()}):
        r = await admin.delete(path, params=params)
        assert r.status_code == 422, (params, r.text)
    assert (await admin.get(path)).status_code == 200
    r = await admin.delete(path, params={"confirm": tenant.slug})
    assert r.status_code == 204
    assert (await world.a["viewer"].client.get("/api/v1/devices")).status_code == 404
    r = await device.client.post("/api/v1/telemetry", json={"telemetry": {"t": 1}})
    assert r.status_code == 401
    # Only system admins restore.
    r = await world.a["admin"].client.post(f"{path}/restore")
    assert r.status_code == 403
    r = await admin.post(f"{path}/restore")
    assert r.status_code == 200, r.text
    assert r.json()["slug"] == tenant.slug
    r = await admin.post(f"{path}/restore")
    assert r.status_code == 409
    r = await admin.post(f"/api/v1/tenants/{uuid.uuid4()}/restore")
    assert r.status_code == 404
    listed = (await world.a["viewer"].client.get("/api/v1/devices")).json()
    assert [d["name"] for d in listed["devices"]] == ["kept-through-restore"]
    r = await device.client.post("/api/v1/telemetry", json={"telemetry": {"t": 1}})
    assert r.status_code == 201, r.text
    # After the grace period the purge job removes it for good; restore is then 404.
    r = await admin.delete(path, params={"confirm": tenant.slug})
    assert r.status_code == 204
    await execute(
        owner_engine,
        "update tenants set deleted_at = now() - interval '31 days' where id = :t",
        t=tenant.id,
    )
    assert await purge_deleted_tenants(factory.rt) == [tenant.id]
    assert (await admin.post(f"{path}/restore")).status_code == 404


async def test_a_system_admin_whose_tenant_is_deleted_keeps_working(
    factory: Factory, world: World
) -> None:
    home = await factory.tenant(name="Operators")
    admin = await factory.system_admin(home)
    other = await factory.system_admin()
    r = await other.client.delete(f"/api/v1/tenants/{home.id}", params={"confirm": home.slug})
    assert r.status_code == 204
    # The admin's token still names the deleted tenant: platform work goes on.
    assert (await admin.client.get("/api/v1/tenants")).status_code == 200
    r = await admin.client.post(
        "/api/v1/tenants",
        json={"name": "New", "slug": f"new-{uuid.uuid4().hex[:6]}", "tier": "starter"},
    )
    assert r.status_code == 201, r.text
    assert (await admin.client.get("/api/v1/auth/me")).status_code == 200
    # Signing in again and refreshing work too, with no active tenant.
    r = await world.anonymous.post(
        "/api/v1/auth/login", json={"email": admin.email, "password": PASSWORD}
    )
    assert r.status_code == 200, r.text
    pair = r.json()
    r = await world.anonymous.post(
        "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert r.status_code == 200, r.text
    r = await admin.client.post(f"/api/v1/tenants/{home.id}/restore")
    assert r.status_code == 200, r.text


async def test_refresh_after_the_active_tenant_is_deleted_keeps_a_system_admin_in(
    factory: Factory, world: World
) -> None:
    home = await factory.tenant(name="Operators")
    admin = await factory.system_admin(home)
    r = await world.anonymous.post(
        "/api/v1/auth/login",
        json={"email": admin.email, "password": PASSWORD, "tenant_id": str(home.id)},
    )
    pair = r.json()
    assert pair["user"]["tenant"]["id"] == str(home.id)
    r = await admin.client.delete(f"/api/v1/tenants/{home.id}", params={"confirm": home.slug})
    assert r.status_code == 204
    r = await world.anonymous.post(
        "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert r.status_code == 200, r.text
    assert r.json()["user"]["tenant"] is None


async def test_switching_to_a_tenant_one_is_not_a_member_of(world: World) -> None:
    admin = world.system_admin.client
    r = await admin.post("/api/v1/auth/switch-tenant", json={"tenant_id": str(world.tenant_b.id)})
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "not_a_member"
    r = await admin.post("/api/v1/auth/switch-tenant", json={"tenant_id": str(uuid.uuid4())})
    assert r.status_code == 404
    # A tenant's own member still learns nothing about other tenants.
    r = await world.a["admin"].client.post(
        "/api/v1/auth/switch-tenant", json={"tenant_id": str(world.tenant_b.id)}
    )
    assert r.status_code == 404
