"""Cross-tenant isolation, walked over every route of the application.

1. Every route declares exactly one Access policy (who may call it).
2. Every tenant-scoped route called by each role of tenant A (and by an API key of tenant A
   where the route takes keys) with tenant B's ids answers 404 problem+json (or 403 when the
   role is below the route's minimum, which is decided before any object is looked up) and its
   body contains none of tenant B's values.
3. Every tenant-scoped or signed-in route without path parameters (lists, `me`), called the
   same way while tenant B owns one object of every kind, shows none of B's values.
4. None of those calls changes a row of tenant B, in any table (a digest of B's rows, taken
   before and after each test).

Both tenants' objects are made once per module; the cleaner puts them back after each test.
Routes are discovered, not listed: a new route is covered the moment it is mounted, and a
tenant-scoped route with path parameters fails until it has a provider in tests/isolation/.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import Mount

from iiot.app import create_app
from iiot.callers.access import (
    AnyUser,
    PathTenant,
    PathTenantScope,
    Public,
    SystemAdmin,
    TokenTenant,
)
from iiot.devices.access import DeviceOrMember
from iiot.runtime import Runtime
from iiot.tenancy.roles import Role
from iiot.tenants.access import TenantUsageRead
from tests.fixtures.database import Cleaner
from tests.fixtures.factories import ROLES, Factory, World, build_world, signed_in_again
from tests.fixtures.kept import made_once
from tests.fixtures.routes import WalkedRoute, api_routes, fill_path, other_routes
from tests.isolation.registry import body_for, load_providers, provider_for

# The policies naming their tenant by the `{id}` path parameter.
PATH_TENANT = (PathTenant, PathTenantScope, TenantUsageRead)

PROVIDERS = load_providers()
_APP = create_app()
ROUTES = list(api_routes(_APP))
TENANT_SCOPED = [r for r in ROUTES if len(r.accesses) == 1 and r.access.tenant_scoped]
WITH_PARAMS = [r for r in TENANT_SCOPED if r.path_params]
# Endless event streams cannot be read to the end like a list; their isolation (another
# tenant's device refused, nothing of it on one's own stream, across processes) is proven in
# tests/stream/test_stream.py.
STREAMS = {"/api/v1/stream"}
WITHOUT_PARAMS = [
    r
    for r in ROUTES
    if len(r.accesses) == 1
    and not r.path_params
    and r.path not in STREAMS
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
        f"{route.id} must declare exactly one iiot.callers.access.Access policy as a "
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


# --- the two tenants' objects, made once ------------------------------------------------------


@dataclass
class Walk:
    """Tenant B with one object of every kind, tenant A with its own device, telemetry and
    rule: made once per module. Every test starts from exactly these rows (the cleaner puts
    them back after each test) and must leave tenant B's rows as they were."""

    world: World
    b_ids: dict[str, str]
    made: dict[int, dict[str, str]]  # tenant B's path parameters, by provider
    own: Own


@pytest.fixture(scope="module")
async def _made_once(
    runtime: Runtime, app: FastAPI, database_cleaner: Cleaner
) -> AsyncIterator[Walk | None]:
    """The walk's objects, kept by the cleaner; None where the cleaner cannot keep rows (the
    objects are then made again for every test)."""
    async with made_once(runtime, app, database_cleaner, _make_walk) as made:
        yield made


async def _make_walk(factory: Factory) -> Walk:
    world = await build_world(factory)
    b_ids, made = await _populate_tenant_b(factory, world)
    own = await _populate_tenant_a(factory, world)
    return Walk(world=world, b_ids=b_ids, made=made, own=own)


@pytest.fixture
async def walk(
    _made_once: Walk | None, factory: Factory, database_cleaner: Cleaner
) -> AsyncIterator[Walk]:
    """This test's walk: the module's objects with fresh access tokens (a test may sign its
    callers out), and, after the test, proof that tenant B's rows are unchanged."""
    if _made_once is None:
        made = await _make_walk(factory)
    else:
        made = replace(_made_once, world=signed_in_again(factory, _made_once.world))
    before = await database_cleaner.fingerprint(made.world.tenant_b.id)
    yield made
    after = await database_cleaner.fingerprint(made.world.tenant_b.id)
    changed = sorted(t for t in before if before[t] != after.get(t))
    assert changed == [], f"tenant A's calls changed tenant B's rows in {changed}"


@pytest.fixture
def world(walk: Walk) -> World:
    return walk.world


# --- 2. tenant B's ids answer 404 to tenant A --------------------------------------------------


def _expected_status(route: WalkedRoute, role: str, *, member: bool = False) -> int:
    access = route.access
    if isinstance(access, PATH_TENANT) and not member:
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


def _b_params(route: WalkedRoute, walk: Walk) -> dict[str, str]:
    params: dict[str, str] = {}
    provider = provider_for(route.path)
    needs_provider = not (isinstance(route.access, PATH_TENANT) and route.path_params == ["id"])
    if needs_provider:
        assert provider is not None, (
            f"{route.path} is tenant-scoped and has path parameters {route.path_params} but no "
            "isolation provider: add `@provider(...)` in tests/isolation/<domain>.py"
        )
    if provider is not None:
        params.update(walk.made[id(provider)])
    if isinstance(route.access, PATH_TENANT):
        params["id"] = str(walk.world.tenant_b.id)
    return params


@pytest.mark.parametrize("route", WITH_PARAMS, ids=_ids(WITH_PARAMS))
async def test_other_tenants_ids_answer_404(
    route: WalkedRoute, factory: Factory, walk: Walk, world: World, app: FastAPI
) -> None:
    params = _b_params(route, walk)
    await _expect_not_found(route, factory, world, walk.own, app, params)


NESTED = [r for r in WITH_PARAMS if isinstance(r.access, PATH_TENANT) and r.path_params != ["id"]]


@pytest.mark.parametrize("route", NESTED, ids=_ids(NESTED))
async def test_own_tenant_with_other_tenants_child_ids_answers_404(
    route: WalkedRoute, factory: Factory, walk: Walk, world: World, app: FastAPI
) -> None:
    """`/tenants/{A}/things/{B's thing}`: membership of A must not open B's objects."""
    params = _b_params(route, walk)
    params["id"] = str(world.tenant_a.id)
    await _expect_not_found(route, factory, world, walk.own, app, params, path_tenant_member=True)


async def _expect_not_found(
    route: WalkedRoute,
    factory: Factory,
    world: World,
    own: Own,
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
        callers.append(("tenant A's API key", factory.client({"X-API-Key": own.api_key}), 404))
    device = factory.client({"X-API-Key": own.device_token})
    if isinstance(route.access, DeviceOrMember):
        callers.append(("tenant A's device token", device, 404))
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
    if not isinstance(route.access, DeviceOrMember):
        # A device token is no member: refused before anything is looked up.
        r = await _call(device, route.method, url, {})
        assert r.status_code in (401, 403), f"{route.id} as a device: {r.status_code}"
        assert _leaks(r.text, world.b_markers, url) == []


def _takes_api_keys(route: WalkedRoute) -> bool:
    return isinstance(route.access, TokenTenant) and bool(
        getattr(route.access, "allow_api_keys", False)
    )


# --- 3. lists show none of tenant B's values ---------------------------------------------------


async def _populate_tenant_b(
    factory: Factory, world: World
) -> tuple[dict[str, str], dict[int, dict[str, str]]]:
    """Give tenant B one object of every kind the providers know how to make; B's ids by the
    name a query parameter or body field gives them (`device_id`, `rule_id`, `tenant_id`...),
    and the path parameters each provider returned (by provider)."""
    ids = {"tenant_id": str(world.tenant_b.id), "user_id": str(world.b_admin.user_id)}
    by_provider: dict[int, dict[str, str]] = {}
    for path, fn in PROVIDERS.items():
        if id(fn) not in by_provider:
            by_provider[id(fn)] = await fn(factory, world)
        for param, value in by_provider[id(fn)].items():
            ids.setdefault(_id_name(path, param), value)
    return ids, by_provider


def _id_name(path: str, param: str) -> str:
    """`/api/v1/devices/{id}` -> `device_id`; `{user_id}` stays `user_id`."""
    if param != "id":
        return param
    collection = path.split("/{id}")[0].rsplit("/", 1)[-1].replace("-", "_")
    return collection.removesuffix("s") + "_id"


@dataclass
class Own:
    """Tenant A's own objects, to call list routes with valid parameters."""

    ids: dict[str, str]
    markers: list[str]
    device_token: str
    api_key: str  # with every scope


async def _populate_tenant_a(factory: Factory, world: World) -> Own:
    admin = world.a["admin"].client
    r = await admin.post("/api/v1/devices", json={"name": "alpha-press-1"})
    assert r.status_code == 201, r.text
    device = r.json()
    sent = await factory.client({"X-API-Key": device["token"]}).post(
        "/api/v1/telemetry", json={"telemetry": {"alpha_temp": 21.5}}
    )
    assert sent.status_code == 201, sent.text
    r = await admin.post(
        "/api/v1/rules",
        json={
            "name": "alpha-rule",
            "rule_type": "threshold",
            "device_id": device["id"],
            "condition": {"key": "alpha_temp", "operator": ">", "value": 1000},
            "severity": "low",
            "actions": [{"type": "alert", "message": "alpha"}],
        },
    )
    assert r.status_code == 201, r.text
    ids = {
        "tenant_id": str(world.tenant_a.id),
        "user_id": str(world.a["admin"].user_id),
        "device_id": device["id"],
        "rule_id": r.json()["id"],
    }
    r = await admin.post(
        API_KEYS, json={"name": "isolation walk", "scopes": ["telemetry:write", "read", "manage"]}
    )
    assert r.status_code == 201, f"cannot create an API key for the walk: {r.status_code} {r.text}"
    return Own(
        ids=ids,
        markers=["alpha-press-1", "alpha_temp"],
        device_token=device["token"],
        api_key=r.json()["key"],
    )


# Valid values of required query parameters that are not ids, by name.
QUERY_VALUES = {"key": "alpha_temp", "interval": "1h"}


def _query(route: WalkedRoute, app: FastAPI, ids: dict[str, str]) -> dict[str, str]:
    """Query parameters for `route`: every id parameter set from `ids` (filters included),
    every other required parameter a valid value."""
    schema = app.openapi()
    op = schema["paths"][route.path][route.method.lower()]
    params: dict[str, str] = {}
    for p in op.get("parameters", []):
        if p["in"] != "query":
            continue
        if _is_uuid(p["schema"]):
            assert p["name"] in ids, f"{route.id}: no value for id parameter {p['name']}"
            params[p["name"]] = ids[p["name"]]
        elif p.get("required"):
            value = QUERY_VALUES.get(p["name"])
            if value is None:
                value = _example(p["schema"], schema.get("components", {}).get("schemas", {}))
            params[p["name"]] = str(value)
    return params


def _is_uuid(schema: dict[str, Any]) -> bool:
    options = schema.get("anyOf", schema.get("oneOf", [schema]))
    return any(o.get("format") == "uuid" for o in options)


def _with_ids(
    value: Any, schema: dict[str, Any], components: dict[str, Any], ids: dict[str, str]
) -> Any:
    """`value` (an instance of `schema`) with every id property it may carry, required or not,
    set from `ids`."""
    if "$ref" in schema:
        return _with_ids(value, components[schema["$ref"].rsplit("/", 1)[-1]], components, ids)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [o for o in schema[key] if o.get("type") != "null"]
            return _with_ids(value, options[0], components, ids) if options else value
    if not isinstance(value, dict):
        return value
    out = dict(value)
    for name, prop in schema.get("properties", {}).items():
        if _is_uuid(prop) and name in ids:
            out[name] = ids[name]
        elif name in out:
            out[name] = _with_ids(out[name], prop, components, ids)
    return out


async def _list_callers(
    route: WalkedRoute, factory: Factory, world: World, own: Own
) -> list[tuple[str, httpx.AsyncClient, set[int]]]:
    """Every kind of tenant-A caller, with the statuses a valid request may get."""
    minimum = getattr(route.access, "minimum", None)
    ok = set(range(200, 300))
    callers = []
    for role in ROLES:
        allowed = not isinstance(minimum, Role) or Role(role).at_least(minimum)
        if isinstance(route.access, AnyUser):
            allowed = True
        callers.append((f"tenant A's {role}", world.a[role].client, ok if allowed else {403}))
    if _takes_api_keys(route):
        callers.append(("tenant A's API key", factory.client({"X-API-Key": own.api_key}), ok))
    device = factory.client({"X-API-Key": own.device_token})
    callers.append(
        (
            "tenant A's device token",
            device,
            ok if isinstance(route.access, DeviceOrMember) else {401, 403},
        )
    )
    return callers


async def _send(
    client: httpx.AsyncClient,
    route: WalkedRoute,
    app: FastAPI,
    body: dict[str, Any] | None,
    query: dict[str, str],
) -> httpx.Response:
    if route.method in WRITE_METHODS:
        return await client.request(route.method, route.path, params=query, json=body or {})
    return await client.request(route.method, route.path, params=query)


async def _body(
    route: WalkedRoute, factory: Factory, world: World, app: FastAPI, ids: dict[str, str]
) -> dict[str, Any] | None:
    if route.method not in WRITE_METHODS:
        return None
    schema = app.openapi()
    builder = body_for(route.method, route.path)
    body = (
        dict(await builder(factory, world, ids))
        if builder is not None
        else await _valid_body(route, factory, world, {}, app)
    )
    op = schema["paths"][route.path][route.method.lower()]
    body_schema = op.get("requestBody", {}).get("content", {}).get("application/json", {})
    components = schema.get("components", {}).get("schemas", {})
    return dict(_with_ids(body, body_schema.get("schema", {}), components, ids))


@pytest.mark.parametrize("route", WITHOUT_PARAMS, ids=_ids(WITHOUT_PARAMS))
async def test_lists_show_nothing_of_the_other_tenant(
    route: WalkedRoute, factory: Factory, walk: Walk, world: World, app: FastAPI
) -> None:
    """Called with valid parameters naming tenant A's own objects, every caller of tenant A
    allowed by the policy gets a 2xx answer, and it contains nothing of tenant B."""
    own = walk.own
    query = _query(route, app, own.ids)
    for who, client, expected in await _list_callers(route, factory, world, own):
        body = await _body(route, factory, world, app, own.ids)
        r = await _send(client, route, app, body, query)
        assert r.status_code in expected, (
            f"{route.id} as {who} with {query} {body}: expected {sorted(expected)[:3]}..., "
            f"got {r.status_code} {r.text[:300]}"
        )
        leaked = _leaks(r.text, world.b_markers, route.path)
        assert leaked == [], f"{route.id} as {who} leaked tenant B's {leaked}"


def _names_ids(route: WalkedRoute) -> bool:
    """Whether the route takes an id in its query string or JSON body."""
    schema = _APP.openapi()
    op = schema["paths"].get(route.path, {}).get(route.method.lower(), {})
    if any(p["in"] == "query" and _is_uuid(p["schema"]) for p in op.get("parameters", [])):
        return True
    body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
    components = schema.get("components", {}).get("schemas", {})
    marked = _with_ids({}, body.get("schema", {}), components, _AnyId())
    return bool(marked)


class _AnyId(dict[str, str]):
    """Answers every id name: finds which id properties a schema has."""

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> str:
        return key


NAMING_IDS = [r for r in WITHOUT_PARAMS if _names_ids(r)]


@pytest.mark.parametrize("route", NAMING_IDS, ids=_ids(NAMING_IDS))
async def test_other_tenants_ids_in_query_and_body(
    route: WalkedRoute, factory: Factory, walk: Walk, world: World, app: FastAPI
) -> None:
    """Tenant B's ids in the query string or JSON body (everything else valid): tenant A's
    callers get 404, or a 2xx answer with nothing of B in it (a filter that matches nothing);
    a write that names B's objects never succeeds."""
    b_ids, own = walk.b_ids, walk.own
    unknown = {name: str(uuid.uuid4()) for name in b_ids}
    for who, client, allowed in await _list_callers(route, factory, world, own):
        query = _query(route, app, b_ids)
        body = await _body(route, factory, world, app, b_ids)
        r = await _send(client, route, app, body, query)
        sent = json.dumps([query, body], default=str)
        if allowed.isdisjoint(range(200, 300)):
            assert r.status_code in allowed, f"{route.id} as {who}: {r.status_code} {r.text[:300]}"
        elif route.method in WRITE_METHODS:
            # B's object is answered exactly like an id that exists nowhere.
            assert r.status_code in (404, 422), (
                f"{route.id} as {who} with tenant B's ids {sent}: got {r.status_code} "
                f"{r.text[:300]}"
            )
            again = await _send(
                client,
                route,
                app,
                await _body(route, factory, world, app, unknown),
                _query(route, app, unknown),
            )
            assert (again.status_code, again.json().get("code")) == (
                r.status_code,
                r.json().get("code"),
            ), f"{route.id} as {who}: B's ids answer {r.text[:200]}, unknown ids {again.text[:200]}"
        else:
            assert r.status_code == 404 or 200 <= r.status_code < 300, (
                f"{route.id} as {who} with tenant B's ids {sent}: got {r.status_code} "
                f"{r.text[:300]}"
            )
        leaked = _leaks(r.text, world.b_markers, sent)
        assert leaked == [], f"{route.id} as {who} leaked tenant B's {leaked}"


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
