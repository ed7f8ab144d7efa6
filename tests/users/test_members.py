"""Members: listing, roles, removal, last-admin protection, the seat quota under concurrency."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.fixtures.factories import PASSWORD, Factory, World
from tests.users.helpers import invite, new_email, rows


def _members_url(world: World) -> str:
    return f"/api/v1/tenants/{world.tenant_a.id}/users"


async def test_list_members_with_status_and_pages(world: World) -> None:
    invited = await invite(world.a["admin"], world.tenant_a.id, new_email())
    r = await world.a["viewer"].client.get(_members_url(world))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 5
    by_id = {u["user_id"]: u for u in body["users"]}
    assert by_id[invited["user_id"]]["status"] == "invited"
    assert by_id[str(world.a["admin"].user_id)]["is_tenant_admin"] is True
    assert by_id[str(world.a["viewer"].user_id)]["role"] == "viewer"
    assert set(by_id[str(world.a["viewer"].user_id)]) == {
        "user_id",
        "email",
        "full_name",
        "role",
        "is_tenant_admin",
        "status",
        "created_at",
    }
    assert str(world.b_admin.user_id) not in by_id

    pages = []
    for offset in range(0, 5, 2):
        r = await world.a["viewer"].client.get(
            _members_url(world), params={"limit": 2, "offset": offset}
        )
        assert r.json()["total"] == 5
        pages.extend(u["user_id"] for u in r.json()["users"])
    assert pages == [u["user_id"] for u in body["users"]]
    for params in ({"limit": 0}, {"limit": 101}, {"offset": -1}, {"limit": "x"}):
        r = await world.a["viewer"].client.get(_members_url(world), params=params)
        assert r.status_code == 422, params


async def test_role_change_by_role_and_by_flag(world: World, owner_engine: AsyncEngine) -> None:
    admin = world.a["admin"].client
    target = world.a["viewer"].user_id
    url = f"{_members_url(world)}/{target}/role"
    r = await admin.patch(url, json={"role": "operator"})
    assert r.json() == {"user_id": str(target), "role": "operator", "is_tenant_admin": False}
    r = await admin.patch(url, json={"is_tenant_admin": True})
    assert r.json()["role"] == "admin"
    r = await admin.patch(url, json={"is_tenant_admin": False})
    assert r.json()["role"] == "developer"
    r = await admin.patch(url, json={"is_tenant_admin": False})
    assert r.json()["role"] == "developer"
    for body in (
        {},
        {"role": "root"},
        {"role": "viewer", "is_tenant_admin": True},
        {"role": "admin", "extra": 1},
        {"role": None, "is_tenant_admin": None},
    ):
        r = await admin.patch(url, json=body)
        assert r.status_code == 422, (body, r.text)
    [m] = await rows(owner_engine, "select role from memberships where user_id = :u", u=target)
    assert m["role"] == "developer"
    changes = await rows(
        owner_engine,
        "select before, after, actor_id from audit_events where action = 'member.role_change'"
        " order by created_at",
    )
    assert [(c["before"]["role"], c["after"]["role"]) for c in changes] == [
        ("viewer", "operator"),
        ("operator", "admin"),
        ("admin", "developer"),
    ]
    assert {c["actor_id"] for c in changes} == {world.a["admin"].user_id}


async def test_the_new_role_applies_at_once(world: World) -> None:
    viewer = world.a["viewer"]
    invite_url = f"{_members_url(world)}/invite"
    r = await viewer.client.post(invite_url, json={"email": new_email()})
    assert r.status_code == 403
    await world.a["admin"].client.patch(
        f"{_members_url(world)}/{viewer.user_id}/role", json={"role": "admin"}
    )
    r = await viewer.client.post(invite_url, json={"email": new_email()})
    assert r.status_code == 201, r.text


async def test_last_admin_can_be_neither_demoted_nor_removed(
    world: World, owner_engine: AsyncEngine
) -> None:
    admin = world.a["admin"]
    role_url = f"{_members_url(world)}/{admin.user_id}/role"
    for client in (admin.client, world.system_admin.client):
        r = await client.patch(role_url, json={"role": "viewer"})
        assert r.status_code == 409, r.text
        r = await client.patch(role_url, json={"is_tenant_admin": False})
        assert r.status_code == 409, r.text
        r = await client.delete(f"{_members_url(world)}/{admin.user_id}")
        assert r.status_code == 409, r.text
    [m] = await rows(
        owner_engine, "select role from memberships where user_id = :u", u=admin.user_id
    )
    assert m["role"] == "admin"
    # With a second admin, the first may step down.
    await admin.client.patch(
        f"{_members_url(world)}/{world.a['developer'].user_id}/role", json={"role": "admin"}
    )
    r = await admin.client.patch(role_url, json={"role": "viewer"})
    assert r.status_code == 200, r.text


async def test_an_invited_admin_does_not_count_as_an_admin(world: World) -> None:
    invited = await invite(world.a["admin"], world.tenant_a.id, new_email(), role="admin")
    r = await world.a["admin"].client.delete(f"{_members_url(world)}/{world.a['admin'].user_id}")
    assert r.status_code == 409
    r = await world.a["admin"].client.delete(f"{_members_url(world)}/{invited['user_id']}")
    assert r.status_code == 204


async def test_two_admins_demoting_each_other_at_once_leave_one(
    factory: Factory, world: World
) -> None:
    second = await factory.member(world.tenant_a, "admin")
    first = world.a["admin"]
    results = await asyncio.gather(
        first.client.patch(f"{_members_url(world)}/{second.user_id}/role", json={"role": "viewer"}),
        second.client.patch(f"{_members_url(world)}/{first.user_id}/role", json={"role": "viewer"}),
    )
    statuses = sorted(r.status_code for r in results)
    # Whoever goes second is either no longer an admin (403) or the last admin (409).
    assert statuses[0] == 200
    assert statuses[1] in (403, 409)
    r = await world.system_admin.client.get(_members_url(world))
    admins = [u for u in r.json()["users"] if u["role"] == "admin"]
    assert len(admins) == 1


async def test_removal_revokes_access_at_once(world: World, factory: Factory) -> None:
    operator = world.a["operator"]
    login = await factory.client().post(
        "/api/v1/auth/login", json={"email": operator.email, "password": PASSWORD}
    )
    refresh_token = login.json()["refresh_token"]
    r = await world.a["admin"].client.delete(f"{_members_url(world)}/{operator.user_id}")
    assert r.status_code == 204, r.text
    # The old access token no longer opens the tenant, and the refresh token is revoked.
    r = await operator.client.get(f"/api/v1/tenants/{world.tenant_a.id}")
    assert r.status_code == 404
    r = await factory.client().post("/api/v1/auth/refresh", json={"refresh_token": refresh_token})
    assert r.status_code == 401
    r = await world.a["admin"].client.delete(f"{_members_url(world)}/{operator.user_id}")
    assert r.status_code == 404


async def test_a_member_may_remove_themself_but_not_others(world: World) -> None:
    viewer, developer = world.a["viewer"], world.a["developer"]
    r = await viewer.client.delete(f"{_members_url(world)}/{developer.user_id}")
    assert r.status_code == 403
    r = await viewer.client.delete(f"{_members_url(world)}/{viewer.user_id}")
    assert r.status_code == 204
    r = await developer.client.get(_members_url(world))
    assert str(viewer.user_id) not in {u["user_id"] for u in r.json()["users"]}


async def test_unknown_and_malformed_member_ids(world: World) -> None:
    admin = world.a["admin"].client
    unknown = uuid.uuid4()
    r = await admin.patch(f"{_members_url(world)}/{unknown}/role", json={"role": "viewer"})
    assert r.status_code == 404
    r = await admin.delete(f"{_members_url(world)}/{unknown}")
    assert r.status_code == 404
    r = await admin.delete(f"{_members_url(world)}/not-a-uuid")
    assert r.status_code == 422
    r = await admin.patch(
        f"{_members_url(world)}/{world.b_admin.user_id}/role", json={"role": "viewer"}
    )
    assert r.status_code == 404
    r = await admin.get("/api/v1/tenants/not-a-uuid/users")
    assert r.status_code == 422


async def test_concurrent_invitations_take_exactly_the_free_seats(
    factory: Factory, owner_engine: AsyncEngine
) -> None:
    tenant = await factory.tenant(tier="starter", max_users=4)
    admin = await factory.member(tenant, "admin")
    emails = [new_email("race") for _ in range(20)]
    results = await asyncio.gather(
        *(
            admin.client.post(f"/api/v1/tenants/{tenant.id}/users/invite", json={"email": e})
            for e in emails
        )
    )
    statuses = [r.status_code for r in results]
    assert statuses.count(201) == 3, statuses
    assert statuses.count(403) == 17, statuses
    refusal = next(r.json() for r in results if r.status_code == 403)
    assert refusal["code"] == "quota_exceeded"
    assert refusal["quota_type"] == "users"
    assert refusal["limit"] == 4
    assert refusal["current"] == 4
    members = await rows(
        owner_engine, "select status from memberships where tenant_id = :t", t=tenant.id
    )
    assert sorted(m["status"] for m in members) == ["active", "invited", "invited", "invited"]
    assert len(await rows(owner_engine, "select * from invitations")) == 3
    # Refused invitations left no account behind.
    assert len(await rows(owner_engine, "select * from users where status = 'invited'")) == 3
    r = await admin.client.get(f"/api/v1/tenants/{tenant.id}/quotas")
    assert r.json()["users"] == {"used": 4, "limit": 4, "percentage": 100.0}
