"""The original platform's own client flow, unchanged, as one end-to-end test."""

from __future__ import annotations

import uuid

from tests.fixtures.factories import PASSWORD, Factory


async def test_original_client_flow(factory: Factory) -> None:
    home = await factory.tenant(name="INSA Automation Corp", tier="enterprise")
    admin = await factory.system_admin(home)
    client = factory.client()

    # log in
    r = await client.post("/api/v1/auth/login", json={"email": admin.email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    tenant_id = r.json()["user"]["tenant"]["id"]
    assert tenant_id == str(home.id)
    client.headers["Authorization"] = f"Bearer {token}"

    # list tenants
    r = await client.get("/api/v1/tenants")
    assert r.status_code == 200, r.text
    listing = r.json()
    assert listing["total"] == 1
    assert listing["page"] == 1
    assert listing["limit"] == 50
    assert listing["tenants"][0]["slug"] == home.slug

    # get, stats, users and quotas of the caller's tenant
    r = await client.get(f"/api/v1/tenants/{tenant_id}")
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "INSA Automation Corp"
    r = await client.get(f"/api/v1/tenants/{tenant_id}/stats")
    assert r.status_code == 200, r.text
    assert r.json()["user_count"] == 1
    assert r.json()["user_quota_percent"] is None  # enterprise: unlimited
    r = await client.get(f"/api/v1/tenants/{tenant_id}/users")
    assert r.status_code == 200, r.text
    assert [u["email"] for u in r.json()["users"]] == [admin.email]
    assert r.json()["users"][0]["is_tenant_admin"] is True
    r = await client.get(f"/api/v1/tenants/{tenant_id}/quotas")
    assert r.status_code == 200, r.text
    assert r.json()["users"] == {"used": 1, "limit": None, "percentage": None}

    # create a tenant
    slug = f"test-{uuid.uuid4().hex[:8]}"
    r = await client.post(
        "/api/v1/tenants",
        json={
            "name": "Test Corp",
            "slug": slug,
            "tier": "professional",
            "max_devices": 50,
            "max_users": 10,
        },
    )
    assert r.status_code == 201, r.text
    created = r.json()
    new_id = created["id"]
    assert created["slug"] == slug
    assert created["effective_limits"]["max_devices"] == 50

    # update it
    r = await client.patch(f"/api/v1/tenants/{new_id}", json={"max_devices": 100})
    assert r.status_code == 200, r.text
    assert r.json()["max_devices"] == 100
    assert r.json()["effective_limits"]["max_devices"] == 100

    # invite a user
    r = await client.post(
        f"/api/v1/tenants/{new_id}/users/invite",
        json={
            "email": f"invitee-{uuid.uuid4().hex[:6]}@example.com",
            "role": "viewer",
            "is_tenant_admin": False,
        },
    )
    assert r.status_code == 201, r.text
    invitation = r.json()
    assert invitation["status"] == "pending"
    assert "token" not in invitation
    user_id = invitation["user_id"]

    # make them a tenant admin
    r = await client.patch(
        f"/api/v1/tenants/{new_id}/users/{user_id}/role", json={"is_tenant_admin": True}
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"user_id": user_id, "role": "admin", "is_tenant_admin": True}

    # remove them
    r = await client.delete(f"/api/v1/tenants/{new_id}/users/{user_id}")
    assert r.status_code == 204, r.text
    r = await client.get(f"/api/v1/tenants/{new_id}/users")
    assert r.json() == {"users": [], "total": 0}
