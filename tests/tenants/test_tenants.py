"""Tenant management: create, list, update, suspend, delete and purge; tiers; stats; audit."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from iiot.runtime import Runtime
from iiot.tenants.service import next_utc_midnight, purge_deleted_tenants
from tests.fixtures.factories import PASSWORD, Factory, World
from tests.users.helpers import execute, invite, new_email, rows

TENANT_FIELDS = {
    "id",
    "name",
    "slug",
    "status",
    "tier",
    "max_devices",
    "max_users",
    "max_telemetry_points_per_day",
    "max_retention_days",
    "api_requests_per_minute",
    "max_device_messages_per_minute",
    "max_points_per_second",
    "effective_limits",
    "enabled_features",
    "branding",
    "settings",
    "created_at",
    "updated_at",
}


def _slug() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


async def _create(world: World, **body: Any) -> dict[str, Any]:
    payload = {"name": "Gamma Mills", "slug": _slug(), "tier": "starter", **body}
    r = await world.system_admin.client.post("/api/v1/tenants", json=payload)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


async def test_create_returns_the_tenant_shape_and_audits(
    world: World, owner_engine: AsyncEngine
) -> None:
    body = await _create(
        world, max_users=7, branding={"primary_color": "#112233"}, settings={"locale": "de"}
    )
    assert set(body) == TENANT_FIELDS
    assert body["status"] == "active"
    assert body["max_users"] == 7
    assert body["max_devices"] is None
    assert body["effective_limits"] == {
        "max_devices": 10,
        "max_users": 7,
        "max_telemetry_points_per_day": 100_000,
        "max_retention_days": 30,
        "api_requests_per_minute": 600,
        "max_device_messages_per_minute": 600,
        "max_points_per_second": 1_000,
    }
    assert body["branding"] == {
        "logo_url": None,
        "primary_color": "#112233",
        "secondary_color": None,
    }
    assert body["settings"] == {"locale": "de"}
    [event] = await rows(
        owner_engine, "select * from audit_events where tenant_id = :t", t=uuid.UUID(body["id"])
    )
    assert event["action"] == "tenant.create"
    assert event["actor_id"] == world.system_admin.user_id
    assert event["after"]["slug"] == body["slug"]


async def test_create_refuses_bad_input_and_changes_nothing(
    world: World, owner_engine: AsyncEngine
) -> None:
    admin = world.system_admin.client
    taken = world.tenant_a.slug
    cases: list[tuple[dict[str, Any], int]] = [
        ({"name": "X", "slug": taken, "tier": "starter"}, 409),
        ({"name": "X", "slug": "Upper-Case", "tier": "starter"}, 422),
        ({"name": "X", "slug": "ab", "tier": "starter"}, 422),
        ({"name": "X", "slug": "-lead", "tier": "starter"}, 422),
        ({"name": "X", "slug": "trail-", "tier": "starter"}, 422),
        ({"name": "X", "slug": "a" * 64, "tier": "starter"}, 422),
        ({"name": "X", "slug": "has_underscore", "tier": "starter"}, 422),
        ({"name": "X", "slug": _slug(), "tier": "platinum"}, 422),
        ({"name": "X", "slug": _slug()}, 422),
        ({"name": "", "slug": _slug(), "tier": "starter"}, 422),
        ({"name": "N" * 201, "slug": _slug(), "tier": "starter"}, 422),
        ({"name": "X", "slug": _slug(), "tier": "starter", "owner": "me"}, 422),
        ({"name": "X", "slug": _slug(), "tier": "starter", "max_users": -1}, 422),
        ({"name": "X", "slug": _slug(), "tier": "starter", "max_users": 2**31}, 422),
        ({"name": "X", "slug": _slug(), "tier": "starter", "status": "deleted"}, 422),
        (
            {"name": "X", "slug": _slug(), "tier": "starter", "branding": {"primary_color": "red"}},
            422,
        ),
        ({"name": "X", "slug": _slug(), "tier": "starter", "branding": {"logo": "x"}}, 422),
        ({"name": "X", "slug": _slug(), "tier": "starter", "settings": {"k": "v" * 9000}}, 422),
    ]
    for body, expected in cases:
        r = await admin.post("/api/v1/tenants", json=body)
        assert r.status_code == expected, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    assert len(await rows(owner_engine, "select id from tenants")) == 2
    r = await admin.post("/api/v1/tenants", json=[1, 2])
    assert r.status_code == 422


async def test_list_pages_filters_and_searches(world: World, factory: Factory) -> None:
    await factory.tenant(name="Omega 100% Steel", slug="omega-steel", tier="enterprise")
    await factory.tenant(
        name="Under_score Ltd", slug="under-score", tier="starter", status="suspended"
    )
    admin = world.system_admin.client

    r = await admin.get("/api/v1/tenants")
    everything = r.json()
    assert everything["total"] == 4
    ids = [t["id"] for t in everything["tenants"]]
    paged: list[str] = []
    for page in (1, 2, 3):
        r = await admin.get("/api/v1/tenants", params={"page": page, "limit": 2})
        assert r.json()["page"] == page
        assert r.json()["limit"] == 2
        assert r.json()["total"] == 4
        paged.extend(t["id"] for t in r.json()["tenants"])
    assert paged == ids

    async def names(**params: Any) -> list[str]:
        r = await admin.get("/api/v1/tenants", params=params)
        assert r.status_code == 200, r.text
        return sorted(t["name"] for t in r.json()["tenants"])

    assert await names(tier="enterprise") == ["Omega 100% Steel"]
    assert await names(status="suspended") == ["Under_score Ltd"]
    assert await names(search="OMEGA") == ["Omega 100% Steel"]
    assert await names(search="steel") == ["Omega 100% Steel"]
    assert await names(search="100%") == ["Omega 100% Steel"]
    assert await names(search="%") == ["Omega 100% Steel"]
    assert await names(search="_") == ["Under_score Ltd"]
    assert await names(search="acme") == ["Acme Plant"]
    assert await names(tier="nonexistent") == []
    for params in (
        {"limit": 101},
        {"limit": 0},
        {"page": 0},
        {"status": "gone"},
        {"search": "x" * 201},
        {"page": "one"},
    ):
        r = await admin.get("/api/v1/tenants", params=params)
        assert r.status_code == 422, params


async def test_tenant_admin_may_change_only_name_branding_and_settings(
    world: World, owner_engine: AsyncEngine
) -> None:
    admin = world.a["admin"].client
    url = f"/api/v1/tenants/{world.tenant_a.id}"
    r = await admin.patch(
        url,
        json={
            "name": "Acme Plant North",
            "branding": {"logo_url": "https://cdn.example.com/logo.png", "primary_color": "#abc"},
            "settings": {"timezone": "Europe/Berlin"},
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == "Acme Plant North"
    assert body["branding"]["logo_url"] == "https://cdn.example.com/logo.png"
    assert body["settings"] == {"timezone": "Europe/Berlin"}
    r = await admin.patch(url, json={"branding": {"secondary_color": "#000000"}})
    assert r.json()["branding"] == {
        "logo_url": "https://cdn.example.com/logo.png",
        "primary_color": "#abc",
        "secondary_color": "#000000",
    }

    before = await rows(owner_engine, "select * from tenants where id = :t", t=world.tenant_a.id)
    for field, value in (
        ("tier", "enterprise"),
        ("max_users", 1000),
        ("status", "suspended"),
        ("max_devices", None),
        ("slug", "new-slug"),
        ("enabled_features", ["x"]),
    ):
        r = await admin.patch(url, json={field: value})
        assert r.status_code == 403, (field, r.text)
        assert r.json()["code"] == "forbidden"
    r = await admin.patch(url, json={"name": "Sneaky", "tier": "enterprise"})
    assert r.status_code == 403
    after = await rows(owner_engine, "select * from tenants where id = :t", t=world.tenant_a.id)
    assert after == before

    for body in (
        {},
        {"name": None},
        {"name": ""},
        {"colour": "blue"},
        {"settings": None},
        {"branding": {"primary_color": "#12345g"}},
    ):
        r = await admin.patch(url, json=body)
        assert r.status_code == 422, (body, r.text)
    r = await world.a["developer"].client.patch(url, json={"name": "Dev"})
    assert r.status_code == 403
    r = await admin.patch(f"/api/v1/tenants/{uuid.uuid4()}", json={"name": "Ghost"})
    assert r.status_code == 404
    r = await admin.patch("/api/v1/tenants/123", json={"name": "Ghost"})
    assert r.status_code == 422


async def test_system_admin_may_change_everything(world: World, owner_engine: AsyncEngine) -> None:
    admin = world.system_admin.client
    url = f"/api/v1/tenants/{world.tenant_a.id}"
    r = await admin.patch(url, json={"tier": "starter", "max_users": 12, "max_devices": 3})
    assert r.status_code == 200, r.text
    limits = r.json()["effective_limits"]
    assert limits["max_users"] == 12
    assert limits["max_devices"] == 3
    assert limits["max_telemetry_points_per_day"] == 100_000  # starter's default
    r = await admin.patch(url, json={"max_users": None})
    assert r.json()["max_users"] is None
    assert r.json()["effective_limits"]["max_users"] == 5  # back to the tier's
    r = await admin.patch(url, json={"slug": world.tenant_b.slug})
    assert r.status_code == 409
    r = await admin.patch(url, json={"tier": "diamond"})
    assert r.status_code == 422
    r = await admin.patch(url, json={"slug": "acme-renamed", "enabled_features": ["mqtt"]})
    assert r.status_code == 200, r.text
    assert r.json()["enabled_features"] == ["mqtt"]
    actions = [
        e["action"]
        for e in await rows(
            owner_engine,
            # One PATCH records its update and tier change in one transaction (same time).
            "select action from audit_events where tenant_id = :t order by created_at, action desc",
            t=world.tenant_a.id,
        )
    ]
    assert actions == ["tenant.update", "tenant.tier_change", "tenant.update", "tenant.update"]
    [tier_change] = await rows(
        owner_engine, "select * from audit_events where action = 'tenant.tier_change'"
    )
    assert tier_change["before"] == {"tier": "professional"}
    assert tier_change["after"] == {"tier": "starter"}


async def test_suspension_refuses_members_but_not_their_other_tenants(
    world: World, factory: Factory, owner_engine: AsyncEngine
) -> None:
    # A member of both tenants, whose first membership is tenant A.
    both = await factory.member(world.tenant_a, "developer")
    await factory.membership(world.tenant_b, both.user_id, "viewer")
    sysadmin = world.system_admin.client
    r = await sysadmin.post(f"/api/v1/tenants/{world.tenant_a.id}/suspend")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "suspended"

    for actor in (world.a["viewer"], world.a["admin"], both):
        r = await actor.client.get(f"/api/v1/tenants/{world.tenant_a.id}")
        assert r.status_code == 403, r.text
        assert r.json()["code"] == "tenant_suspended"
    anon = factory.client()
    r = await anon.post(
        "/api/v1/auth/login",
        json={
            "email": world.a["viewer"].email,
            "password": PASSWORD,
            "tenant_id": str(world.tenant_a.id),
        },
    )
    assert r.status_code == 403
    assert r.json()["code"] == "tenant_suspended"
    r = await anon.post(
        "/api/v1/auth/login", json={"email": world.a["viewer"].email, "password": PASSWORD}
    )
    assert r.status_code == 403
    # The member of both lands in tenant B, which still works.
    r = await anon.post("/api/v1/auth/login", json={"email": both.email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert r.json()["user"]["tenant"]["id"] == str(world.tenant_b.id)
    token = r.json()["access_token"]
    r = await anon.get(
        f"/api/v1/tenants/{world.tenant_b.id}", headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 200
    # System admins still see it; activation restores access.
    r = await sysadmin.get(f"/api/v1/tenants/{world.tenant_a.id}")
    assert r.json()["status"] == "suspended"
    r = await sysadmin.post(f"/api/v1/tenants/{world.tenant_a.id}/suspend")
    assert r.status_code == 200
    r = await sysadmin.post(f"/api/v1/tenants/{world.tenant_a.id}/activate")
    assert r.json()["status"] == "active"
    r = await world.a["viewer"].client.get(f"/api/v1/tenants/{world.tenant_a.id}")
    assert r.status_code == 200
    actions = [
        e["action"]
        for e in await rows(
            owner_engine,
            # One PATCH records its update and tier change in one transaction (same time).
            "select action from audit_events where tenant_id = :t order by created_at, action desc",
            t=world.tenant_a.id,
        )
    ]
    assert actions == ["tenant.suspend", "tenant.activate"]


async def test_delete_hides_the_tenant_and_the_job_purges_it_later(
    world: World, runtime: Runtime, owner_engine: AsyncEngine
) -> None:
    created = await _create(world)
    tenant_id = uuid.UUID(created["id"])
    admin = world.system_admin.client
    member = world.a["admin"]
    await invite(world.system_admin, tenant_id, new_email())
    r = await member.client.delete(
        f"/api/v1/tenants/{world.tenant_a.id}", params={"confirm": world.tenant_a.slug}
    )
    assert r.status_code == 403
    confirm = {"confirm": created["slug"]}
    r = await admin.delete(f"/api/v1/tenants/{tenant_id}", params=confirm)
    assert r.status_code == 204, r.text
    r = await admin.get(f"/api/v1/tenants/{tenant_id}")
    assert r.status_code == 404
    r = await admin.delete(f"/api/v1/tenants/{tenant_id}", params=confirm)
    assert r.status_code == 404
    r = await admin.get("/api/v1/tenants")
    assert created["id"] not in {t["id"] for t in r.json()["tenants"]}
    # The slug stays reserved until the purge.
    r = await admin.post(
        "/api/v1/tenants", json={"name": "Again", "slug": created["slug"], "tier": "starter"}
    )
    assert r.status_code == 409

    assert await purge_deleted_tenants(runtime) == []
    await execute(
        owner_engine,
        "update tenants set deleted_at = now() - interval '31 days' where id = :t",
        t=tenant_id,
    )
    assert await purge_deleted_tenants(runtime) == [tenant_id]
    for table in ("tenants", "memberships", "invitations", "audit_events"):
        column = "id" if table == "tenants" else "tenant_id"
        assert (
            await rows(owner_engine, f"select * from {table} where {column} = :t", t=tenant_id)
            == []
        ), table
    [purge] = await rows(
        owner_engine, "select * from platform_audit_events where action = 'tenant.purge'"
    )
    assert purge["subject"] == str(tenant_id)
    assert len(await rows(owner_engine, "select * from tenants")) == 2


async def test_tiers_list_and_update(world: World, owner_engine: AsyncEngine) -> None:
    r = await world.a["viewer"].client.get("/api/v1/tiers")
    assert r.status_code == 200
    tiers = {t["name"]: t for t in r.json()}
    assert set(tiers) == {"starter", "professional", "enterprise"}
    assert tiers["professional"]["max_users"] == 50

    admin = world.system_admin.client
    r = await admin.patch("/api/v1/tiers/professional", json={"max_users": 60, "features": ["x"]})
    assert r.status_code == 200, r.text
    assert r.json()["max_users"] == 60
    # Tenant A has no own max_users: it follows its tier.
    r = await admin.get(f"/api/v1/tenants/{world.tenant_a.id}")
    assert r.json()["effective_limits"]["max_users"] == 60
    r = await admin.patch("/api/v1/tiers/professional", json={"max_devices": None})
    assert r.json()["max_devices"] is None
    for body, expected in (
        ({}, 422),
        ({"display_name": None}, 422),
        ({"max_users": -5}, 422),
        ({"colour": 1}, 422),
    ):
        r = await admin.patch("/api/v1/tiers/professional", json=body)
        assert r.status_code == expected, (body, r.text)
    r = await admin.patch("/api/v1/tiers/platinum", json={"max_users": 1})
    assert r.status_code == 404
    r = await world.a["admin"].client.patch("/api/v1/tiers/starter", json={"max_users": 1000})
    assert r.status_code == 403
    events = await rows(
        owner_engine, "select * from platform_audit_events where action = 'tier.update' order by id"
    )
    assert [e["subject"] for e in events] == ["professional", "professional"]
    assert events[0]["details"]["after"] == {"max_users": 60, "features": ["x"]}
    assert events[0]["actor_id"] == world.system_admin.user_id


async def test_stats_and_quotas_count_real_rows(world: World, factory: Factory) -> None:
    await invite(world.a["admin"], world.tenant_a.id, new_email())
    r = await world.a["viewer"].client.get(f"/api/v1/tenants/{world.tenant_a.id}/stats")
    assert r.status_code == 200, r.text
    stats = r.json()
    assert stats["tenant_id"] == str(world.tenant_a.id)
    assert stats["user_count"] == 4
    assert stats["invited_count"] == 1
    assert stats["user_quota_percent"] == 10.0  # 5 seats of professional's 50
    assert stats["device_count"] == 0
    assert stats["device_quota_percent"] == 0.0
    for key in ("rule_count", "alerts_24h", "active_alerts", "telemetry_points_today"):
        assert stats[key] == 0, key

    r = await world.a["viewer"].client.get(f"/api/v1/tenants/{world.tenant_a.id}/quotas")
    quotas = r.json()
    assert quotas["users"] == {"used": 5, "limit": 50, "percentage": 10.0}
    assert quotas["devices"] == {"used": 0, "limit": 500, "percentage": 0.0}
    assert quotas["telemetry_points"]["limit_per_day"] == 10_000_000
    assert quotas["telemetry_points"]["used_today"] == 0
    resets = datetime.fromisoformat(quotas["telemetry_points"]["resets_at"].replace("Z", "+00:00"))
    assert resets == next_utc_midnight()
    assert quotas["data_retention"]["current_days"] == 90

    # Tenant B's figures are its own.
    r = await world.b_admin.client.get(f"/api/v1/tenants/{world.tenant_b.id}/stats")
    assert r.json()["user_count"] == 1
    assert r.json()["invited_count"] == 0

    unlimited = await factory.tenant(tier="enterprise")
    await factory.membership(unlimited, world.system_admin.user_id, "admin")
    r = await world.system_admin.client.get(f"/api/v1/tenants/{unlimited.id}/stats")
    assert r.json()["user_quota_percent"] is None
    assert r.json()["telemetry_quota_percent"] is None


def test_next_utc_midnight() -> None:
    at = datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC)
    assert next_utc_midnight(at) == datetime(2026, 3, 2, tzinfo=UTC)
    assert next_utc_midnight(datetime(2026, 3, 2, tzinfo=UTC)) == datetime(2026, 3, 3, tzinfo=UTC)


async def test_audit_trail_filters_and_pages(world: World) -> None:
    admin = world.a["admin"]
    url = f"/api/v1/tenants/{world.tenant_a.id}/audit"
    start = datetime.now(UTC) - timedelta(seconds=1)
    await admin.client.patch(f"/api/v1/tenants/{world.tenant_a.id}", json={"name": "Renamed"})
    invited = await invite(admin, world.tenant_a.id, new_email())
    await admin.client.patch(
        f"/api/v1/tenants/{world.tenant_a.id}/users/{invited['user_id']}/role",
        json={"role": "operator"},
    )
    await world.system_admin.client.patch(
        f"/api/v1/tenants/{world.tenant_a.id}", json={"max_devices": 5}
    )

    r = await admin.client.get(url)
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["total"] == 4
    assert [e["action"] for e in page["events"]] == [
        "tenant.update",
        "member.role_change",
        "member.invite",
        "tenant.update",
    ]
    newest = page["events"][0]
    assert newest["actor_id"] == str(world.system_admin.user_id)
    assert newest["actor_type"] == "user"
    assert newest["before"] == {"max_devices": None}
    assert newest["after"] == {"max_devices": 5}
    assert newest["target_type"] == "tenant"
    assert newest["target_id"] == str(world.tenant_a.id)

    async def actions(**params: Any) -> list[str]:
        r = await admin.client.get(url, params=params)
        assert r.status_code == 200, r.text
        return [e["action"] for e in r.json()["events"]]

    assert await actions(action="member.") == ["member.role_change", "member.invite"]
    assert await actions(actor=str(world.system_admin.user_id)) == ["tenant.update"]
    assert await actions(target_id=invited["user_id"]) == ["member.role_change", "member.invite"]
    assert await actions(since=(datetime.now(UTC) + timedelta(minutes=1)).isoformat()) == []
    assert len(await actions(since=start.isoformat())) == 4
    assert await actions(until=start.isoformat()) == []
    assert await actions(limit=1, offset=1) == ["member.role_change"]
    for params in (
        {"since": "2026-01-01T00:00:00"},
        {"limit": 101},
        {"actor": "nobody"},
        {"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
    ):
        r = await admin.client.get(url, params=params)
        assert r.status_code == 422, params
    r = await world.a["developer"].client.get(url)
    assert r.status_code == 403
    r = await world.b_admin.client.get(url)
    assert r.status_code == 404
    r = await world.system_admin.client.get(url)
    assert r.json()["total"] == 4


async def test_unknown_and_malformed_tenant_ids(world: World) -> None:
    admin = world.system_admin.client
    routes = [
        ("GET", "/api/v1/tenants/{}"),
        ("PATCH", "/api/v1/tenants/{}"),
        ("DELETE", "/api/v1/tenants/{}"),
        ("GET", "/api/v1/tenants/{}/stats"),
        ("GET", "/api/v1/tenants/{}/quotas"),
        ("GET", "/api/v1/tenants/{}/users"),
        ("GET", "/api/v1/tenants/{}/audit"),
        ("POST", "/api/v1/tenants/{}/suspend"),
        ("POST", "/api/v1/tenants/{}/activate"),
        ("POST", "/api/v1/tenants/{}/users/invite"),
    ]
    bodies = {"PATCH": {"name": "Ghost"}, "POST": {"email": new_email()}}
    for method, path in routes:
        for tenant_id, expected in ((uuid.uuid4(), 404), ("not-a-uuid", 422), ("1" * 40, 422)):
            r = await admin.request(method, path.format(tenant_id), json=bodies.get(method))
            assert r.status_code == expected, (method, path, tenant_id, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")


async def test_concurrent_creates_with_one_slug_make_one_tenant(
    world: World, owner_engine: AsyncEngine
) -> None:
    slug = _slug()
    results = await asyncio.gather(
        *(
            world.system_admin.client.post(
                "/api/v1/tenants", json={"name": f"Racer {n}", "slug": slug, "tier": "starter"}
            )
            for n in range(8)
        )
    )
    assert sorted(r.status_code for r in results) == [201] + [409] * 7
    assert len(await rows(owner_engine, "select id from tenants where slug = :s", s=slug)) == 1


async def test_stats_follow_other_domains_tables(world: World) -> None:
    """Device figures come from the devices table, through that domain's usage provider."""
    developer = world.a["developer"].client
    for n in range(2):
        r = await developer.post("/api/v1/devices", json={"name": f"Pump {n}"})
        assert r.status_code == 201, r.text
    r = await world.a["viewer"].client.get(f"/api/v1/tenants/{world.tenant_a.id}/stats")
    assert r.json()["device_count"] == 2
    assert r.json()["device_quota_percent"] == 0.4  # 2 of professional's 500
    r = await world.a["viewer"].client.get(f"/api/v1/tenants/{world.tenant_a.id}/quotas")
    assert r.json()["devices"] == {"used": 2, "limit": 500, "percentage": 0.4}
    r = await world.b_admin.client.get(f"/api/v1/tenants/{world.tenant_b.id}/stats")
    assert r.json()["device_count"] == 0
