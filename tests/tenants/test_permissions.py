"""Permission matrix: every tenant-management endpoint x every kind of caller.

Callers: anonymous, tenant A's viewer/operator/developer/admin, tenant B's admin (a non-member
of A), and a system admin who is no member of A. Each endpoint is called on tenant A; the
non-member's answers must carry none of tenant A's data.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.fixtures.factories import Factory, World

CALLERS = ("anonymous", "viewer", "operator", "developer", "admin", "other_admin", "system_admin")

Target = Callable[[Factory, World], Awaitable[dict[str, str]]]


async def _no_target(factory: Factory, world: World) -> dict[str, str]:
    return {}


async def _slug_of_a(factory: Factory, world: World) -> dict[str, str]:
    return {"slug": world.tenant_a.slug}


async def _fresh_member(factory: Factory, world: World) -> dict[str, str]:
    member = await factory.member(world.tenant_a, "viewer")
    return {"user_id": str(member.user_id)}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    expected: tuple[int, ...]  # in the order of CALLERS
    body: Callable[[], Any] | None = None
    target: Target = _no_target

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


MEMBER_READ = (401, 200, 200, 200, 200, 404, 200)
ADMIN_ONLY = (401, 403, 403, 403, 200, 404, 200)
PLATFORM_ON_TENANT = (401, 403, 403, 403, 403, 404, 200)
SYSTEM_ADMIN_ONLY = (401, 403, 403, 403, 403, 403, 200)

ENDPOINTS = [
    Endpoint("GET", "/api/v1/tenants", SYSTEM_ADMIN_ONLY),
    Endpoint("GET", "/api/v1/tenants/{id}", MEMBER_READ),
    Endpoint("GET", "/api/v1/tenants/{id}/stats", MEMBER_READ),
    Endpoint("GET", "/api/v1/tenants/{id}/quotas", MEMBER_READ),
    Endpoint("GET", "/api/v1/tenants/{id}/users", MEMBER_READ),
    Endpoint(
        "POST",
        "/api/v1/tenants",
        (401, 403, 403, 403, 403, 403, 201),
        body=lambda: {"name": "New Co", "slug": f"new-{uuid.uuid4().hex[:8]}", "tier": "starter"},
    ),
    Endpoint("PATCH", "/api/v1/tenants/{id}", ADMIN_ONLY, body=lambda: {"name": "Renamed"}),
    Endpoint(
        "PATCH",
        "/api/v1/tenants/{id}",
        (401, 403, 403, 403, 403, 404, 200),
        body=lambda: {"max_users": 9},
    ),
    Endpoint(
        "POST",
        "/api/v1/tenants/{id}/users/invite",
        (401, 403, 403, 403, 201, 404, 201),
        body=lambda: {"email": f"m-{uuid.uuid4().hex[:8]}@example.com", "role": "viewer"},
    ),
    Endpoint(
        "PATCH",
        "/api/v1/tenants/{id}/users/{user_id}/role",
        ADMIN_ONLY,
        body=lambda: {"role": "operator"},
        target=_fresh_member,
    ),
    Endpoint(
        "DELETE",
        "/api/v1/tenants/{id}/users/{user_id}",
        (401, 403, 403, 403, 204, 404, 204),
        target=_fresh_member,
    ),
    Endpoint("GET", "/api/v1/tenants/{id}/audit", ADMIN_ONLY),
    Endpoint("POST", "/api/v1/tenants/{id}/activate", PLATFORM_ON_TENANT),
    Endpoint("POST", "/api/v1/tenants/{id}/suspend", PLATFORM_ON_TENANT),
    Endpoint(
        "DELETE",
        "/api/v1/tenants/{id}?confirm={slug}",
        (401, 403, 403, 403, 403, 404, 204),
        target=_slug_of_a,
    ),
    Endpoint("GET", "/api/v1/tiers", (401, 200, 200, 200, 200, 200, 200)),
    Endpoint(
        "PATCH",
        "/api/v1/tiers/{tier}",
        SYSTEM_ADMIN_ONLY,
        body=lambda: {"display_name": "Starter Plus"},
    ),
    Endpoint(
        "POST",
        "/api/v1/invitations/accept",
        (400, 400, 400, 400, 400, 400, 400),
        body=lambda: {"token": "inv_" + "Z" * 43, "password": "long-enough-password"},
    ),
]


def _client(world: World, caller: str) -> httpx.AsyncClient:
    if caller == "anonymous":
        return world.anonymous
    if caller == "other_admin":
        return world.b_admin.client
    if caller == "system_admin":
        return world.system_admin.client
    return world.a[caller].client


def _a_markers(world: World) -> list[str]:
    return [
        str(world.tenant_a.id),
        world.tenant_a.name,
        world.tenant_a.slug,
        *(actor.email for actor in world.a.values()),
    ]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.id for e in ENDPOINTS])
async def test_permission_matrix(endpoint: Endpoint, factory: Factory, world: World) -> None:
    got: dict[str, int] = {}
    for caller in CALLERS:
        params = {"id": str(world.tenant_a.id), "tier": "starter"}
        params.update(await endpoint.target(factory, world))
        url = endpoint.path.format(**params)
        body = endpoint.body() if endpoint.body else None
        r = await _client(world, caller).request(endpoint.method, url, json=body)
        got[caller] = r.status_code
        assert r.status_code < 500, r.text
        if r.status_code >= 400:
            assert r.headers["content-type"].startswith("application/problem+json"), r.text
        if caller in ("anonymous", "other_admin") and r.status_code >= 400:
            problem = json.loads(r.text)
            problem.pop("instance", None)
            leaked = [m for m in _a_markers(world) if m in json.dumps(problem)]
            assert leaked == [], f"{endpoint.id} as {caller} leaked {leaked}"
    assert got == dict(zip(CALLERS, endpoint.expected, strict=True))
