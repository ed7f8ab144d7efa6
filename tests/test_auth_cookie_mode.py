"""Cookie mode of the auth routes (the web UI): the refresh token only in an HttpOnly cookie."""

from __future__ import annotations

import httpx

from tests.fixtures.factories import PASSWORD, Factory, World

COOKIE = "iiot_refresh"


def _cookie_header(r: httpx.Response) -> str:
    headers = [v for k, v in r.headers.multi_items() if k == "set-cookie"]
    assert len(headers) == 1, headers
    return headers[0]


async def test_login_refresh_logout_in_cookie_mode(factory: Factory, world: World) -> None:
    email = world.a["viewer"].email
    client = factory.client()
    r = await client.post(
        "/api/v1/auth/login?cookie=true", json={"email": email, "password": PASSWORD}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert "refresh_token" not in body
    assert body["access_token"]
    assert body["user"]["email"] == email
    header = _cookie_header(r).lower()
    for part in ("httponly", "samesite=strict", "path=/api/v1/auth", "max-age="):
        assert part in header, header
    first = client.cookies[COOKIE]

    # Refresh without a body: the cookie's token is spent and replaced.
    r = await client.post("/api/v1/auth/refresh")
    assert r.status_code == 200, r.text
    assert "refresh_token" not in r.json()
    second = client.cookies[COOKIE]
    assert second != first
    me = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json()["email"] == email

    # The spent token no longer works (and its re-use revokes the family).
    replay = factory.client()
    replay.cookies.set(COOKIE, first, path="/api/v1/auth")
    assert (await replay.post("/api/v1/auth/refresh")).status_code == 401

    # Logout clears the cookie; refreshing afterwards is refused.
    client.cookies.set(COOKIE, second, path="/api/v1/auth")
    r = await client.post("/api/v1/auth/logout")
    assert r.status_code == 204
    assert 'iiot_refresh=""' in _cookie_header(r) or "max-age=0" in _cookie_header(r).lower()
    again = factory.client()
    again.cookies.set(COOKIE, second, path="/api/v1/auth")
    r = await again.post("/api/v1/auth/refresh")
    assert r.status_code == 401


async def test_json_mode_is_unchanged(factory: Factory, world: World) -> None:
    client = factory.client()
    r = await client.post(
        "/api/v1/auth/login", json={"email": world.a["admin"].email, "password": PASSWORD}
    )
    assert r.status_code == 200
    assert r.json()["refresh_token"]
    assert "set-cookie" not in r.headers
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": r.json()["refresh_token"]})
    assert r.status_code == 200
    assert r.json()["refresh_token"]
    assert "set-cookie" not in r.headers


async def test_refresh_without_body_or_cookie_is_401(factory: Factory) -> None:
    r = await factory.client().post("/api/v1/auth/refresh")
    assert r.status_code == 401
    assert r.json()["detail"] == "no refresh token: sign in"


async def test_switch_tenant_in_cookie_mode_sets_a_new_cookie(
    factory: Factory, world: World
) -> None:
    actor = world.a["developer"]
    await factory.membership(world.tenant_b, actor.user_id, "viewer")
    r = await actor.client.post(
        "/api/v1/auth/switch-tenant?cookie=true", json={"tenant_id": str(world.tenant_b.id)}
    )
    assert r.status_code == 200, r.text
    assert "refresh_token" not in r.json()
    assert r.json()["user"]["tenant"]["id"] == str(world.tenant_b.id)
    assert "httponly" in _cookie_header(r).lower()
