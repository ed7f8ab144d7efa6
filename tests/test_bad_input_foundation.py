"""Bad input to the foundation endpoints: always a 4xx problem+json with a `code`, never a 500,
and nothing is written."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.fixtures.factories import PASSWORD, Factory, World

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
SWITCH = "/api/v1/auth/switch-tenant"
HUGE = "x" * 100_000

# (endpoint, raw body or JSON value, offending field or None for the whole body)
JSON_CASES: list[tuple[str, Any, str | None]] = [
    (LOGIN, {}, "email"),
    (LOGIN, {"email": "a@example.com"}, "password"),
    (LOGIN, {"password": PASSWORD}, "email"),
    (LOGIN, {"email": 12345, "password": PASSWORD}, "email"),
    (LOGIN, {"email": "a@example.com", "password": ["x"]}, "password"),
    (LOGIN, {"email": "a@example.com", "password": PASSWORD, "tenant_id": 7}, "tenant_id"),
    (LOGIN, {"email": "a@example.com", "password": PASSWORD, "tenant_id": "acme"}, "tenant_id"),
    (LOGIN, {"email": "a@example.com", "password": PASSWORD, "is_admin": True}, "is_admin"),
    (LOGIN, {"email": HUGE, "password": PASSWORD}, "email"),
    (LOGIN, {"email": "a@example.com", "password": HUGE}, "password"),
    (LOGIN, {"email": "a\u0000@example.com", "password": PASSWORD}, "email"),
    (LOGIN, {"email": "a@example.com", "password": "pass\u0000word"}, "password"),
    (LOGIN, {"email": "", "password": ""}, "email"),
    (LOGIN, {"email": None, "password": None}, "email"),
    (LOGIN, [], None),
    (LOGIN, ["email", "password"], None),
    (LOGIN, "a@example.com", None),
    (LOGIN, 42, None),
    (LOGIN, None, None),
    (REFRESH, {}, "refresh_token"),
    (REFRESH, {"refresh_token": 5}, "refresh_token"),
    (REFRESH, {"refresh_token": ""}, "refresh_token"),
    (REFRESH, {"refresh_token": HUGE}, "refresh_token"),
    (REFRESH, {"refresh_token": "rt_\u0000"}, "refresh_token"),
    (REFRESH, {"refresh_token": "rt_x", "family": "y"}, "family"),
    (REFRESH, [], None),
    (LOGOUT, {}, "refresh_token"),
    (LOGOUT, {"refresh_token": {"$ne": None}}, "refresh_token"),
    (LOGOUT, {"refresh_token": HUGE}, "refresh_token"),
    (LOGOUT, {"refresh_token": "rt_x", "all": True}, "all"),
    (SWITCH, {}, "tenant_id"),
    (SWITCH, {"tenant_id": "not-a-uuid"}, "tenant_id"),
    (SWITCH, {"tenant_id": None}, "tenant_id"),
    (SWITCH, {"tenant_id": 1}, "tenant_id"),
    (SWITCH, {"tenant_id": "00000000-0000-0000-0000-000000000000", "role": "admin"}, "role"),
]

RAW_CASES: list[tuple[str, bytes, str]] = [
    (LOGIN, b"{bad", "application/json"),
    (LOGIN, b'{"email": "a@example.com", "password": ', "application/json"),
    (LOGIN, b"", "application/json"),
    (LOGIN, b"\xff\xfe\x00", "application/json"),
    (LOGIN, b"[" * 50_000 + b"]" * 50_000, "application/json"),
    (LOGIN, b"email=a%40example.com&password=x", "application/x-www-form-urlencoded"),
    (LOGIN, b'{"email": "a@example.com", "password": "x"}', "text/plain"),
    (
        LOGIN,
        b'{"email": "a@example.com", "password": "' + b"p" * 3_000_000 + b'"}',
        "application/json",
    ),
    (REFRESH, b"null", "application/json"),
    (LOGOUT, b"{'refresh_token': 'single quotes'}", "application/json"),
    (SWITCH, b'{"tenant_id": }', "application/json"),
]


def _assert_problem(r: httpx.Response, field: str | None = None) -> dict[str, Any]:
    assert 400 <= r.status_code < 500, f"{r.status_code} {r.text[:300]}"
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body: dict[str, Any] = r.json()
    assert body["status"] == r.status_code
    assert isinstance(body["code"], str)
    assert body["code"]
    assert {"type", "title", "detail"} <= set(body)
    if field is not None:
        assert body["code"] == "validation_error", body
        assert field in {e["field"] for e in body["errors"]}, body["errors"]
    return body


async def _written(owner_engine: AsyncEngine) -> tuple[int, int]:
    async with owner_engine.connect() as conn:
        tokens = await conn.scalar(text("select count(*) from refresh_tokens"))
        audit = await conn.scalar(text("select count(*) from platform_audit_events"))
    return int(tokens or 0), int(audit or 0)


def _client_for(path: str, world: World) -> httpx.AsyncClient:
    return world.a["admin"].client if path == SWITCH else world.anonymous


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    JSON_CASES,
    ids=[f"{p.rsplit('/', 1)[-1]}-{i}" for i, (p, _, _) in enumerate(JSON_CASES)],
)
async def test_bad_json_bodies(
    world: World, owner_engine: AsyncEngine, path: str, payload: Any, field: str | None
) -> None:
    before = await _written(owner_engine)
    r = await _client_for(path, world).post(path, json=payload)
    body = _assert_problem(r, field)
    assert r.status_code == 422
    assert body["errors"]
    assert await _written(owner_engine) == before


@pytest.mark.parametrize(
    ("path", "raw", "content_type"),
    RAW_CASES,
    ids=[f"{p.rsplit('/', 1)[-1]}-{i}" for i, (p, _, _) in enumerate(RAW_CASES)],
)
async def test_malformed_bodies(
    world: World, owner_engine: AsyncEngine, path: str, raw: bytes, content_type: str
) -> None:
    before = await _written(owner_engine)
    r = await _client_for(path, world).post(
        path, content=raw, headers={"content-type": content_type}
    )
    _assert_problem(r)
    assert await _written(owner_engine) == before


async def test_malformed_json_names_the_body(world: World) -> None:
    r = await world.anonymous.post(
        LOGIN, content=b"{bad", headers={"content-type": "application/json"}
    )
    body = _assert_problem(r)
    assert r.status_code == 400
    assert body["code"] == "malformed_json"
    assert body["errors"][0]["field"] == "body"
    assert body["errors"][0]["type"] == "json_invalid"
    assert "malformed JSON" in body["errors"][0]["message"]


async def test_validation_problem_lists_every_bad_field(world: World) -> None:
    r = await world.anonymous.post(LOGIN, json={"email": 1, "password": 2, "extra": 3})
    body = _assert_problem(r)
    assert {e["field"] for e in body["errors"]} == {"email", "password", "extra"}
    assert all(e["in"] == "body" for e in body["errors"])
    assert "email" in body["detail"]


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/api/v1/no-such-thing", 404, "not_found"),
        # Other GET paths are the web UI's client routes; reserved prefixes keep their 404.
        ("GET", "/health/no-such-page", 404, "not_found"),
        ("POST", "/api/v1/auth", 404, "not_found"),
        ("GET", "/api/v1/auth/login", 405, "method_not_allowed"),
        ("DELETE", "/api/v1/auth/me", 405, "method_not_allowed"),
        ("PUT", "/health", 405, "method_not_allowed"),
        ("POST", "/ready", 405, "method_not_allowed"),
    ],
)
async def test_unknown_routes_and_methods(
    world: World, method: str, path: str, status: int, code: str
) -> None:
    r = await world.anonymous.request(method, path)
    body = _assert_problem(r)
    assert (r.status_code, body["code"]) == (status, code)
    if status == 405:
        assert r.headers["allow"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer " + "y" * 20_000},
        {"Authorization": "Bearer \t"},
        {"Authorization": "Negotiate abc"},
        {"Authorization": "Bearer a b c"},
    ],
)
async def test_bad_authorization_headers_on_me(factory: Factory, headers: dict[str, str]) -> None:
    r = await factory.client(headers).get("/api/v1/auth/me")
    body = _assert_problem(r)
    assert (r.status_code, body["code"]) == (401, "unauthorized")


@pytest.mark.parametrize("path", ["/health", "/ready", "/metrics", "/openapi.json"])
async def test_platform_endpoints_ignore_junk_query(world: World, path: str) -> None:
    r = await world.anonymous.get(path, params={"x": "\u0000" * 10, "limit": "-1" * 500})
    assert r.status_code == 200, r.text


async def test_openapi_documents_the_problem_shape(world: World) -> None:
    schema = (await world.anonymous.get("/openapi.json")).json()
    assert {"type", "title", "status", "detail", "code"} <= set(
        schema["components"]["schemas"]["Problem"]["required"]
    )
    login = schema["paths"][LOGIN]["post"]["responses"]
    assert "application/problem+json" in login["401"]["content"]
    assert json.dumps(login["429"]).count("Problem") == 1
