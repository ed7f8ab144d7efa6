"""API keys: created by tenant admins, shown once, stored as digests, revocable, scoped."""

from __future__ import annotations

import hashlib

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.fixtures.factories import Factory, World


async def _create(world: World, **body: object) -> dict[str, object]:
    payload = {"name": "integration", "scopes": ["read"], **body}
    r = await world.a["admin"].client.post("/api/v1/api-keys", json=payload)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_key_is_shown_once_and_stored_as_digest(
    world: World, owner_engine: AsyncEngine
) -> None:
    created = await _create(world, scopes=["read", "telemetry:write"])
    key = str(created["key"])
    assert key.startswith("ik_")
    assert len(key) >= 3 + 43
    assert created["scopes"] == ["read", "telemetry:write"]
    assert key.startswith(str(created["prefix"]))

    listed = (await world.a["admin"].client.get("/api/v1/api-keys")).json()
    assert listed["total"] == 1
    assert "key" not in listed["api_keys"][0]
    assert key not in str(listed)

    async with owner_engine.connect() as conn:
        row = (await conn.execute(text("select * from api_keys"))).mappings().one()
    assert bytes(row["token_hash"]) == hashlib.sha256(key.encode()).digest()
    assert key not in str(dict(row))


async def test_only_tenant_admins_manage_keys(world: World) -> None:
    for role in ("viewer", "operator", "developer"):
        r = await world.a[role].client.post(
            "/api/v1/api-keys", json={"name": "x", "scopes": ["read"]}
        )
        assert r.status_code == 403, role
        assert (await world.a[role].client.get("/api/v1/api-keys")).status_code == 403
    assert (await world.anonymous.get("/api/v1/api-keys")).status_code == 401


async def test_a_key_cannot_manage_keys(world: World, factory: Factory) -> None:
    created = await _create(world, scopes=["manage"])
    client = factory.client({"X-API-Key": str(created["key"])})
    r = await client.post("/api/v1/api-keys", json={"name": "y", "scopes": ["manage"]})
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"


async def test_bad_input_is_refused_and_nothing_stored(
    world: World, owner_engine: AsyncEngine
) -> None:
    admin = world.a["admin"].client
    for body in (
        {"name": "x", "scopes": ["admin"]},
        {"name": "x", "scopes": []},
        {"name": "", "scopes": ["read"]},
        {"name": "x" * 101, "scopes": ["read"]},
        {"name": "x", "scopes": ["read"], "tenant_id": str(world.tenant_b.id)},
        {"name": "x", "scopes": ["read"], "expires_at": "2001-01-01T00:00:00Z"},
        {"name": "x", "scopes": ["read"], "expires_at": "2099-01-01T00:00:00"},
    ):
        r = await admin.post("/api/v1/api-keys", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["code"] == "validation_error"
    async with owner_engine.connect() as conn:
        assert await conn.scalar(text("select count(*) from api_keys")) == 0


async def test_revoke_and_other_tenant(world: World) -> None:
    created = await _create(world)
    key_id = created["id"]
    r = await world.b_admin.client.delete(f"/api/v1/api-keys/{key_id}")
    assert r.status_code == 404
    r = await world.a["admin"].client.delete(f"/api/v1/api-keys/{key_id}")
    assert r.status_code == 204
    again = await world.a["admin"].client.delete(f"/api/v1/api-keys/{key_id}")
    assert again.status_code == 404
    listed = (await world.a["admin"].client.get("/api/v1/api-keys")).json()
    assert listed["api_keys"][0]["revoked_at"] is not None


async def test_key_changes_are_audited(world: World, owner_engine: AsyncEngine) -> None:
    created = await _create(world)
    await world.a["admin"].client.delete(f"/api/v1/api-keys/{created['id']}")
    async with owner_engine.connect() as conn:
        actions = (
            await conn.execute(
                text("select action from audit_events where target_id = :id order by created_at"),
                {"id": created["id"]},
            )
        ).scalars()
        assert list(actions) == ["api_key.created", "api_key.revoked"]


async def test_expired_key_and_suspended_tenant_are_refused(
    world: World, factory: Factory, owner_engine: AsyncEngine
) -> None:
    created = await _create(world, expires_at="2099-01-01T00:00:00Z")
    client = factory.client({"X-API-Key": str(created["key"])})
    assert (await client.get("/api/v1/rules")).status_code == 200
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("update tenants set status = 'suspended' where id = :t"), {"t": world.tenant_a.id}
        )
    r = await client.get("/api/v1/rules")
    assert r.status_code == 403
    assert r.json()["code"] == "tenant_suspended"
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("update tenants set status = 'active' where id = :t"), {"t": world.tenant_a.id}
        )
        await conn.execute(text("update api_keys set expires_at = now() - interval '1 second'"))
    assert (await client.get("/api/v1/rules")).status_code == 401
