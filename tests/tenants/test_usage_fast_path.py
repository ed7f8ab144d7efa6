"""`GET /tenants/{id}/stats` and `/quotas` are served by lean twins (`iiot.http.fast_routes`)
for every request whose `{id}` is a valid UUID; a request with an invalid one takes the
declared route. Both ways give the same answers: the same requests sent to the app and to the
same app without the fast routes get the same status, headers that matter, and body."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest

from iiot.app import API_PREFIX, create_app, declared_policies
from iiot.http.fast_routes import FastRoute, check_twins
from iiot.runtime import Runtime
from iiot.tenants.access import TenantUsageRead
from iiot.tenants.api import FAST_QUOTAS, FAST_STATS, QUOTAS_READ, STATS_READ
from tests.fixtures.factories import Factory, World
from tests.fixtures.fast_routes import WayRecorder, without_fast_routes

ENDPOINTS = ("stats", "quotas")


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("10.1.2.4", 1234)),
        base_url="http://test",
    )


def _answer(r: httpx.Response) -> tuple[int, str | None, str | None, Any]:
    body = r.json() if r.content else None
    return (
        r.status_code,
        r.headers.get("content-type"),
        r.headers.get("www-authenticate"),
        body,
    )


def test_the_fast_routes_use_the_declared_routes_policies() -> None:
    assert FAST_STATS.access is STATS_READ
    assert FAST_QUOTAS.access is QUOTAS_READ
    assert isinstance(STATS_READ, TenantUsageRead)
    assert isinstance(QUOTAS_READ, TenantUsageRead)
    assert (FAST_STATS.method, FAST_STATS.path) == ("GET", "/tenants/{id}/stats")
    assert (FAST_QUOTAS.method, FAST_QUOTAS.path) == ("GET", "/tenants/{id}/quotas")


def test_the_app_declares_the_twins(runtime: Runtime) -> None:
    declared = declared_policies(create_app(runtime=runtime))
    assert declared[("GET", "/api/v1/tenants/{id}/stats")] == (STATS_READ,)
    assert declared[("GET", "/api/v1/tenants/{id}/quotas")] == (QUOTAS_READ,)


def test_a_parameter_route_is_checked_like_an_exact_one() -> None:
    key = ("GET", "/api/v1/tenants/{id}/stats")
    check_twins([FAST_STATS], API_PREFIX, {key: (STATS_READ,)})
    with pytest.raises(RuntimeError, match="no declared route"):
        check_twins([FAST_STATS], API_PREFIX, {})
    with pytest.raises(RuntimeError, match="Access policy"):
        check_twins([FAST_STATS], API_PREFIX, {key: (QUOTAS_READ,)})
    # A declared route with a fixed segment where the fast route has its parameter.
    shadowed = {key: (STATS_READ,), ("GET", "/api/v1/tenants/me/stats"): (STATS_READ,)}
    with pytest.raises(RuntimeError, match="shadows"):
        check_twins([FAST_STATS], API_PREFIX, shadowed)
    # Another method or another tail is no conflict.
    fine = {
        key: (STATS_READ,),
        ("POST", "/api/v1/tenants/me/stats"): (STATS_READ,),
        ("GET", "/api/v1/tenants/me/stats/daily"): (STATS_READ,),
    }
    check_twins([FAST_STATS], API_PREFIX, fine)
    no_convert = FastRoute(
        "GET", FAST_STATS.path, STATS_READ, FAST_STATS.endpoint, FAST_STATS.takes
    )
    with pytest.raises(RuntimeError, match="convert"):
        check_twins([no_convert], API_PREFIX, {key: (STATS_READ,)})


async def _expired_token(runtime: Runtime, world: World) -> str:
    past = datetime.now(UTC) - timedelta(hours=1)
    claims = {
        "sub": str(world.a["admin"].user_id),
        "tid": str(world.tenant_a.id),
        "iss": "iiot",
        "aud": "iiot-api",
        "iat": past - timedelta(minutes=15),
        "exp": past,
        "jti": uuid.uuid4().hex,
        "typ": "access",
    }
    return jwt.encode(claims, runtime.settings.resolved_jwt_secret(), "HS256")


# (name, the tenant id in the path, the request's headers)
Case = tuple[str, str, dict[str, str]]


async def _cases(runtime: Runtime, factory: Factory, world: World) -> list[Case]:
    a = str(world.tenant_a.id)
    suspended = await factory.tenant(status="suspended")
    member_of_suspended = await factory.member(suspended, "admin")
    return [
        ("viewer", a, world.a["viewer"].headers),
        ("admin", a, world.a["admin"].headers),
        ("system admin", a, world.system_admin.headers),
        ("another tenant's admin", a, world.b_admin.headers),
        ("suspended tenant", str(suspended.id), member_of_suspended.headers),
        ("unknown tenant", str(uuid.uuid4()), world.system_admin.headers),
        ("upper-case id", a.upper(), world.a["viewer"].headers),
        ("id without hyphens", uuid.UUID(a).hex, world.a["viewer"].headers),
        ("bad id", "not-a-uuid", world.a["viewer"].headers),
        ("overlong id", a + "0", world.a["viewer"].headers),
        ("no token", a, {}),
        ("expired token", a, {"Authorization": f"Bearer {await _expired_token(runtime, world)}"}),
        ("garbage token", a, {"Authorization": "Bearer not.a.token"}),
        ("not a bearer", a, {"Authorization": "Basic dXNlcjpwYXNz"}),
    ]


async def _send_all(app: Any, cases: list[Case]) -> list[tuple[str, Any]]:
    answers: list[tuple[str, Any]] = []
    async with _client(app) as c:
        for endpoint in ENDPOINTS:
            for name, tenant, headers in cases:
                r = await c.get(f"/api/v1/tenants/{tenant}/{endpoint}", headers=headers)
                answers.append((f"{endpoint}: {name}", _answer(r)))
    return answers


async def test_both_ways_give_the_same_answers(
    runtime: Runtime, factory: Factory, world: World
) -> None:
    cases = await _cases(runtime, factory, world)
    recorder = WayRecorder(create_app(runtime=runtime))
    fast = await _send_all(recorder, cases)
    plain = await _send_all(without_fast_routes(create_app(runtime=runtime)), cases)
    assert fast == plain
    status = {name: answer[0] for name, answer in fast}
    for endpoint in ENDPOINTS:
        assert status[f"{endpoint}: viewer"] == 200
        assert status[f"{endpoint}: admin"] == 200
        assert status[f"{endpoint}: system admin"] == 200
        assert status[f"{endpoint}: upper-case id"] == 200
        assert status[f"{endpoint}: another tenant's admin"] == 404
        assert status[f"{endpoint}: unknown tenant"] == 404
        assert status[f"{endpoint}: suspended tenant"] not in (200, 404, 500)
        assert status[f"{endpoint}: bad id"] == 422
        assert status[f"{endpoint}: overlong id"] == 422
        assert status[f"{endpoint}: no token"] == 401
        assert status[f"{endpoint}: expired token"] == 401
        assert status[f"{endpoint}: garbage token"] == 401
    answers = dict(fast)
    assert answers["stats: viewer"][1] == "application/json"
    assert answers["stats: no token"][1] == "application/problem+json"
    assert answers["stats: no token"][2] is not None  # the challenge
    assert answers["quotas: bad id"][1] == "application/problem+json"
    assert answers["stats: viewer"][3]["tenant_id"] == str(world.tenant_a.id)
    # Only the invalid ids took the declared route.
    ways = dict(zip([name for name, _ in fast], recorder.ways, strict=True))
    for name, way in ways.items():
        if name.endswith(("bad id", "overlong id")):
            assert way in ("tenant_stats", "tenant_quotas"), name
        else:
            assert way == "fast", name


async def test_other_paths_and_methods_are_not_taken(runtime: Runtime, world: World) -> None:
    recorder = WayRecorder(create_app(runtime=runtime))
    a = world.tenant_a.id
    async with _client(recorder) as c:
        headers = world.a["admin"].headers
        assert (await c.post(f"/api/v1/tenants/{a}/stats", headers=headers)).status_code == 405
        r = await c.get(f"/api/v1/tenants/{a}/x/stats", headers=headers)
        assert r.status_code == 404
        r = await c.get("/api/v1/tenants//stats", headers=headers)
        assert r.status_code in (404, 422)
        r = await c.get(f"/api/v1/tenants/{a}/usage/daily", headers=headers)
        assert r.status_code == 200
    assert "fast" not in recorder.ways
