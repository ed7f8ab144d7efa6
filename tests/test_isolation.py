"""Cross-tenant isolation, walked over every route of the application.

1. Every route declares exactly one Access policy (who may call it).
2. Every tenant-scoped route called by each role of tenant A (and by an API key of tenant A
   where the route takes keys) with tenant B's ids answers 404 problem+json (or 403 when the
   role is below the route's minimum, which is decided before any object is looked up) and its
   body contains none of tenant B's values.
3. Every tenant-scoped or signed-in route without path parameters (lists, `me`), called the
   same way while tenant B owns one object of every kind, shows none of B's values.

Routes are discovered, not listed: a new route is covered the moment it is mounted, and a
tenant-scoped route with path parameters fails until it has a provider in tests/isolation/.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import Mount

from iiot.app import create_app
from iiot.tenancy.access import AnyUser, PathTenant, Public, SystemAdmin, TokenTenant
from iiot.tenancy.roles import Role
from tests.fixtures.factories import ROLES, Factory, World
from tests.fixtures.routes import WalkedRoute, api_routes, fill_path, other_routes
from tests.isolation.registry import body_for, load_providers, provider_for

PROVIDERS = load_providers()
_APP = create_app()
ROUTES = list(api_routes(_APP))
TENANT_SCOPED = [r for r in ROUTES if len(r.accesses) == 1 and r.access.tenant_scoped]
WITH_PARAMS = [r for r in TENANT_SCOPED if r.path_params]
WITHOUT_PARAMS = [
    r
    for r in ROUTES
    if len(r.accesses) == 1
    and not r.path_params
    and (r.access.tenant_scoped or isinstance(r.access, AnyUser))
]
WRITE_METHODS = {"POST", "PUT", "PATCH"}
API_KEYS = "/api/v1/api-keys"
PROBLEM = "application/problem+json"


def _ids(routes: list[WalkedRoute]) -> list[str]:
    return [r.id for r in routes]


# --- 1. every route says who may call it ------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES, ids=_ids(ROUTES))
def test_route_declares_exactly_one_access_policy(route: WalkedRoute) -> None:
    assert len(route.accesses) == 1, (
        f"{route.id} must declare exactly one iiot.tenancy.access.Access policy as a "
        f"dependency; found {list(route.accesses)}"
    )


def test_only_documentation_pages_are_outside_the_api_routes() -> None:
    allowed = {_APP.openapi_url, _APP.docs_url, _APP.redoc_url, _APP.swagger_ui_oauth2_redirect_url}
    strays = [
        ctx.path
        for ctx in other_routes(_APP)
        if ctx.path not in allowed and not isinstance(ctx.original_route, Mount)
    ]
    assert strays == [], f"routes without an Access policy: {strays}"


def test_openapi_lists_every_route_with_a_description() -> None:
    schema = _APP.openapi()
    documented = {
        f"{method.upper()} {path}": op
        for path, item in schema["paths"].items()
        for method, op in item.items()
    }
    walked = {r.id for r in ROUTES if r.include_in_schema}
    assert set(documented) == walked
    undocumented = [k for k, op in documented.items() if not op.get("description")]
    assert undocumented == [], f"routes without a docstring: {undocumented}"


def test_walk_finds_the_foundation_routes() -> None:
    """The walk itself works: it sees the known routes and their policies."""
    by_id = {r.id: r for r in ROUTES}
    assert isinstance(by_id["POST /api/v1/auth/login"].access, Public)
    assert isinstance(by_id["GET /api/v1/auth/me"].access, AnyUser)
    assert isinstance(by_id["GET /health"].access, Public)
    assert len(ROUTES) >= 8


def test_a_route_without_a_policy_is_caught() -> None:
    """The check fails on an app that mounts a route with no Access policy."""
    from fastapi import Depends

    rogue = FastAPI()

    @rogue.get("/api/v1/rogue")
    async def rogue_route() -> dict[str, str]:
        """No policy."""
        return {}

    @rogue.get("/api/v1/double", dependencies=[Depends(Public()), Depends(SystemAdmin())])
    async def double_route() -> dict[str, str]:
        """Two policies."""
        return {}

    counts = {r.path: len(r.accesses) for r in api_routes(rogue)}
    assert counts == {"/api/v1/rogue": 0, "/api/v1/double": 2}


# --- 2. tenant B's ids answer 404 to tenant A --------------------------------------------------


def _expected_status(route: WalkedRoute, role: str, *, member: bool = False) -> int:
    access = route.access
    if isinstance(access, PathTenant) and not member:
        return 404  # membership is checked first: a non-member learns nothing, whatever the role
    minimum = getattr(access, "minimum", None)
    if isinstance(minimum, Role) and not Role(role).at_least(minimum):
        return 403  # refused on the caller's own role, before any object is looked up
    return 404


def _leaks(body: str, markers: list[str], sent: str) -> list[str]:
    """B's values in a response, ignoring those the caller itself sent (echoed ids)."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        data.pop("instance", None)  # the request path, which the caller wrote
        body = json.dumps(data)
    return [m for m in markers if m and m in body and m not in sent]


async def _call(
    client: httpx.AsyncClient, method: str, url: str, body: dict[str, Any] | None
) -> httpx.Response:
    if method in WRITE_METHODS:
        return await client.request(method, url, json=body if body is not None else {})
    return await client.request(method, url)


async def _b_params(route: WalkedRoute, factory: Factory, world: World) -> dict[str, str]:
    params: dict[str, str] = {}
    provider = provider_for(route.path)
    needs_provider = not (isinstance(route.access, PathTenant) and route.path_params == ["id"])
    if needs_provider:
        assert provider is not None, (
            f"{route.path} is tenant-scoped and has path parameters {route.path_params} but no "
            "isolation provider: add `@provider(...)` in tests/isolation/<domain>.py"
        )
    if provider is not None:
        params.update(await provider(factory, world))
    if isinstance(route.access, PathTenant):
        params["id"] = str(world.tenant_b.id)
    return params


@pytest.mark.parametrize("route", WITH_PARAMS, ids=_ids(WITH_PARAMS))
async def test_other_tenants_ids_answer_404(
    route: WalkedRoute, factory: Factory, world: World, app: FastAPI
) -> None:
    params = await _b_params(route, factory, world)
    await _expect_not_found(route, factory, world, app, params)


NESTED = [r for r in WITH_PARAMS if isinstance(r.access, PathTenant) and r.path_params != ["id"]]


@pytest.mark.parametrize("route", NESTED, ids=_ids(NESTED))
async def test_own_tenant_with_other_tenants_child_ids_answers_404(
    route: WalkedRoute, factory: Factory, world: World, app: FastAPI
) -> None:
    """`/tenants/{A}/things/{B's thing}`: membership of A must not open B's objects."""
    params = await _b_params(route, factory, world)
    params["id"] = str(world.tenant_a.id)
    await _expect_not_found(route, factory, world, app, params, path_tenant_member=True)


async def _expect_not_found(
    route: WalkedRoute,
    factory: Factory,
    world: World,
    app: FastAPI,
    params: dict[str, str],
    *,
    path_tenant_member: bool = False,
) -> None:
    url = fill_path(route.path, params)
    callers = [
        (
            f"tenant A's {role}",
            world.a[role].client,
            _expected_status(route, role, member=path_tenant_member),
        )
        for role in ROLES
    ]
    if _takes_api_keys(route):
        callers.append(("tenant A's API key", await _api_key_client(factory, world), 404))
    for who, client, expected in callers:
        r = await _call(client, route.method, url, {})
        if r.status_code == 422 and route.method in WRITE_METHODS and expected == 404:
            # `{}` was refused by validation before the look-up; send a valid body.
            body = await _valid_body(route, factory, world, params, app)
            r = await _call(client, route.method, url, body)
            sent = url + json.dumps(body, default=str)
        else:
            sent = url
        assert r.status_code == expected, (
            f"{route.id} as {who} with tenant B's ids {params}: expected "
            f"{expected}, got {r.status_code} {r.text[:300]}"
        )
        assert r.headers["content-type"].startswith(PROBLEM), r.headers["content-type"]
        assert r.json()["code"] == ("not_found" if expected == 404 else "forbidden")
        leaked = _leaks(r.text, world.b_markers, sent)
        assert leaked == [], f"{route.id} as {who} leaked tenant B's {leaked}"


def _takes_api_keys(route: WalkedRoute) -> bool:
    return isinstance(route.access, TokenTenant) and bool(
        getattr(route.access, "allow_api_keys", False)
    )


async def _api_key_client(factory: Factory, world: World) -> httpx.AsyncClient:
    """A client holding an API key of tenant A with every scope."""
    r = await world.a["admin"].client.post(
        API_KEYS, json={"name": "isolation walk", "scopes": ["telemetry:write", "read", "manage"]}
    )
    assert r.status_code == 201, f"cannot create an API key for the walk: {r.status_code} {r.text}"
    return factory.client({"X-API-Key": r.json()["key"]})


# --- 3. lists show none of tenant B's values ---------------------------------------------------


async def _populate_tenant_b(factory: Factory, world: World) -> None:
    """Give tenant B one object of every kind the providers know how to make."""
    for fn in {id(f): f for f in PROVIDERS.values()}.values():
        await fn(factory, world)


@pytest.mark.parametrize("route", WITHOUT_PARAMS, ids=_ids(WITHOUT_PARAMS))
async def test_lists_show_nothing_of_the_other_tenant(
    route: WalkedRoute, factory: Factory, world: World
) -> None:
    await _populate_tenant_b(factory, world)
    callers = [(f"tenant A's {role}", world.a[role].client) for role in ROLES]
    if _takes_api_keys(route):
        callers.append(("tenant A's API key", await _api_key_client(factory, world)))
    for who, client in callers:
        r = await _call(client, route.method, route.path, {})
        assert r.status_code < 500, f"{route.id} as {who}: {r.status_code} {r.text[:300]}"
        leaked = _leaks(r.text, world.b_markers, route.path)
        assert leaked == [], f"{route.id} as {who} leaked tenant B's {leaked}"


def test_every_tenant_route_is_walked() -> None:
    """Nothing tenant-scoped slips between the two walks."""
    assert {r.id for r in TENANT_SCOPED} <= {r.id for r in WITH_PARAMS + WITHOUT_PARAMS}


# --- valid request bodies, for write routes whose `{}` fails validation -------------------------


async def _valid_body(
    route: WalkedRoute, factory: Factory, world: World, params: dict[str, str], app: FastAPI
) -> dict[str, Any]:
    builder = body_for(route.method, route.path)
    if builder is not None:
        return dict(await builder(factory, world, params))
    schema = app.openapi()
    op = schema["paths"][route.path][route.method.lower()]
    content = op.get("requestBody", {}).get("content", {}).get("application/json", {})
    example = _example(content.get("schema", {}), schema.get("components", {}).get("schemas", {}))
    assert isinstance(example, dict), f"{route.id}: cannot build a JSON object body"
    return example


def _example(schema: dict[str, Any], components: dict[str, Any], depth: int = 0) -> Any:
    """A minimal instance of a JSON schema: required properties only, smallest valid values."""
    if depth > 8:
        return None
    if "$ref" in schema:
        return _example(components[schema["$ref"].rsplit("/", 1)[-1]], components, depth + 1)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"]
            return _example(options[0], components, depth + 1) if options else None
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            value = _example(part, components, depth + 1)
            if isinstance(value, dict):
                merged.update(value)
        return merged
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    if "default" in schema:
        return schema["default"]
    kind = schema.get("type", "object")
    if kind == "object":
        props = schema.get("properties", {})
        return {
            name: _example(props[name], components, depth + 1)
            for name in schema.get("required", [])
            if name in props
        }
    if kind == "array":
        item = _example(schema.get("items", {}), components, depth + 1)
        return [item] * int(schema.get("minItems", 0))
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "uuid":
            return str(uuid.uuid4())
        if fmt == "email":
            return f"walk-{uuid.uuid4().hex[:8]}@example.com"
        if fmt == "date-time":
            return datetime.now(UTC).isoformat()
        if fmt in ("uri", "url"):
            return "https://example.com/hook"
        return "x" * max(int(schema.get("minLength", 1)), 3)
    if kind == "integer":
        return int(schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1))
    if kind == "number":
        return float(schema.get("minimum", 1))
    if kind == "boolean":
        return False
    return None
