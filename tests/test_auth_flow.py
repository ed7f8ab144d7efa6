"""The authentication endpoints end to end: login, throttling, refresh rotation and family
revocation, logout, tenant switching, suspension, removal, and the audit trail they leave."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from argon2 import Parameters, PasswordHasher, extract_parameters
from argon2.exceptions import VerifyMismatchError
from argon2.low_level import ARGON2_VERSION
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from iiot.callers.access import TokenTenant
from iiot.identity import passwords
from iiot.runtime import Runtime
from tests.fixtures import passwords as test_passwords
from tests.fixtures.factories import PASSWORD, Factory, World
from tests.fixtures.routes import api_routes

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"
SWITCH = "/api/v1/auth/switch-tenant"


def _tenant_list_route(app: Any) -> str:
    """A GET route of the active tenant open to viewers: where a token's tenant is re-checked."""
    for route in api_routes(app):
        if (
            route.method == "GET"
            and not route.path_params
            and len(route.accesses) == 1
            and isinstance(route.access, TokenTenant)
        ):
            return route.path
    pytest.skip("no tenant-scoped list route is mounted yet")


async def _login(client: httpx.AsyncClient, email: str, password: str = PASSWORD, **extra: Any):  # type: ignore[no-untyped-def]
    return await client.post(LOGIN, json={"email": email, "password": password, **extra})


async def _audit(owner_engine: AsyncEngine, action: str) -> list[dict[str, Any]]:
    async with owner_engine.connect() as conn:
        rows = await conn.execute(
            text("select * from platform_audit_events where action = :a order by id"),
            {"a": action},
        )
        return [dict(r._mapping) for r in rows]


def _problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["code"] == code, body
    return body


# --- login ---------------------------------------------------------------------------------------


async def test_login_answers_the_documented_shape(
    world: World, runtime: Runtime, factory: Factory
) -> None:
    admin = world.a["admin"]
    other = await factory.tenant(name="Second Site")
    await factory.membership(other, admin.user_id, "viewer")
    r = await _login(world.anonymous, admin.email.upper())  # e-mail is case-insensitive
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in", "user"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == runtime.settings.access_token_ttl_seconds == 900
    user = body["user"]
    assert {"id", "email", "full_name", "is_system_admin", "role", "tenant", "tenants"} <= set(user)
    assert user["id"] == str(admin.user_id)
    assert user["email"] == admin.email
    assert user["is_system_admin"] is False
    assert user["role"] == "admin"
    assert user["tenant"] == {
        "id": str(world.tenant_a.id),
        "name": world.tenant_a.name,
        "slug": world.tenant_a.slug,
    }
    tenants = {t["id"]: t for t in user["tenants"]}
    assert set(tenants) == {str(world.tenant_a.id), str(other.id)}
    assert {"id", "name", "slug", "role"} <= set(tenants[str(other.id)])
    assert tenants[str(other.id)]["role"] == "viewer"
    assert str(world.tenant_b.id) not in r.text
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["tid"] == str(world.tenant_a.id)
    assert body["refresh_token"] != body["access_token"]
    assert len(body["refresh_token"]) >= 43  # 256 random bits, url-safe base64


async def test_login_into_a_named_tenant(world: World, factory: Factory) -> None:
    admin = world.a["admin"]
    other = await factory.tenant(name="Named Site")
    await factory.membership(other, admin.user_id, "operator")
    r = await _login(world.anonymous, admin.email, tenant_id=str(other.id))
    assert r.status_code == 200, r.text
    assert r.json()["user"]["tenant"]["id"] == str(other.id)
    assert r.json()["user"]["role"] == "operator"
    r = await _login(factory.client(), admin.email, tenant_id=str(world.tenant_b.id))
    _problem(r, 404, "not_found")


async def test_unknown_email_and_wrong_password_look_the_same(
    world: World, factory: Factory
) -> None:
    wrong_password = await _login(factory.client(), world.a["viewer"].email, "not-the-password")
    unknown_email = await _login(factory.client(), "nobody-here@example.com", "not-the-password")
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_password.json() == unknown_email.json()
    assert wrong_password.headers["content-type"] == unknown_email.headers["content-type"]


@pytest.mark.real_password_hashing
async def test_unknown_email_costs_as_much_as_a_wrong_password(
    world: World, factory: Factory
) -> None:
    """The password hash is verified either way, so timing does not reveal accounts."""

    async def median(email: str) -> float:
        # The median of three: a skipped check would answer in milliseconds against the
        # tenth of a second of a production-cost hash; one stalled attempt cannot decide.
        times = []
        for _ in range(3):
            client = factory.client()
            start = time.perf_counter()
            await _login(client, email, "not-the-password")
            times.append(time.perf_counter() - start)
        return sorted(times)[1]

    known = await median(world.a["viewer"].email)
    unknown = await median("nobody-here@example.com")
    assert unknown > known * 0.5, (known, unknown)


def test_unknown_accounts_are_checked_against_a_hash_made_without_hashing() -> None:
    """The hash an unknown account's password is checked against has the hasher's parameters
    (the check costs what a known account's costs) and a valid form (the check is made, not
    refused as malformed), and no password matches it. It is made from random bytes, at
    import: no process pays a production-cost hash for it, at start-up or at a first login."""
    cheap = test_passwords.CHEAP
    made = passwords.unmatchable_hash(cheap)
    assert extract_parameters(made) == extract_parameters(cheap.hash("a-long-enough-password"))
    with pytest.raises(VerifyMismatchError):
        cheap.verify(made, "iiot-timing-equaliser-not-a-password")
    assert made != passwords.unmatchable_hash(cheap)  # random bytes, not a published constant
    assert not passwords.verify_password(None, "iiot-timing-equaliser-not-a-password")


@pytest.mark.real_password_hashing
def test_the_dummy_hash_has_the_production_parameters() -> None:
    production = PasswordHasher()
    assert extract_parameters(passwords._DUMMY_HASH) == Parameters(
        type=production.type,
        version=ARGON2_VERSION,
        salt_len=production.salt_len,
        hash_len=production.hash_len,
        time_cost=production.time_cost,
        memory_cost=production.memory_cost,
        parallelism=production.parallelism,
    )


async def test_disabled_account_cannot_log_in(world: World, owner_engine: AsyncEngine) -> None:
    actor = world.a["operator"]
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("update users set status = 'disabled' where id = :id"), {"id": actor.user_id}
        )
    r = await _login(world.anonymous, actor.email)
    _problem(r, 401, "unauthorized")


async def test_login_and_failed_login_are_audited(
    world: World, factory: Factory, owner_engine: AsyncEngine
) -> None:
    viewer = world.a["viewer"]
    assert (await _login(factory.client(), viewer.email)).status_code == 200
    assert (await _login(factory.client(), viewer.email, "wrong-password")).status_code == 401
    assert (
        await _login(factory.client(), "ghost@example.com", "wrong-password")
    ).status_code == 401
    logins = await _audit(owner_engine, "auth.login")
    assert [(e["actor_id"], e["subject"]) for e in logins] == [(viewer.user_id, viewer.email)]
    assert logins[0]["ip"] is not None
    failures = await _audit(owner_engine, "auth.login_failed")
    assert [(e["actor_id"], e["subject"]) for e in failures] == [
        (viewer.user_id, viewer.email.lower()),
        (None, "ghost@example.com"),
    ]


# --- throttling ----------------------------------------------------------------------------------


@pytest.fixture
def one_throttle_window(runtime: Runtime) -> Iterator[None]:
    """Login counters count per clock-aligned window: with a window of about 31 years, a slow
    run (a loaded machine, parallel workers) cannot cross a boundary mid-test and reset them."""
    original = runtime.settings
    runtime.settings = original.model_copy(update={"login_failure_window_seconds": 10**9})
    try:
        yield
    finally:
        runtime.settings = original


@pytest.mark.usefixtures("one_throttle_window")
async def test_login_is_throttled_per_account_and_address(
    world: World, factory: Factory, runtime: Runtime
) -> None:
    email = world.a["viewer"].email
    limit = runtime.settings.login_max_failures_per_account
    attacker = factory.client()  # one client address
    for _ in range(limit):
        assert (await _login(attacker, email, "wrong-password")).status_code == 401
    r = await _login(attacker, email)  # even the right password waits, from this address
    body = _problem(r, 429, "rate_limited")
    assert body["limit"] == "login_account_address"
    retry_after = int(r.headers["retry-after"])
    assert 0 < retry_after <= runtime.settings.login_failure_window_seconds
    assert body["retry_after"] == retry_after
    assert r.headers["ratelimit-limit"] == str(limit)
    assert r.headers["ratelimit-remaining"] == "0"
    # The owner, from another address, is not locked out; another account is not affected.
    assert (await _login(factory.client(), email)).status_code == 200
    assert (await _login(attacker, world.a["admin"].email)).status_code == 200


async def test_a_guessing_attack_spread_over_addresses_is_bounded_per_account(
    world: World, factory: Factory, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Across addresses the account has its own counter, which an address where the account
    recently signed in does not use: the owner is delayed at most, never locked out."""
    monkeypatch.setattr(runtime.settings, "login_max_attempts_per_account_global", 4)
    email = world.a["viewer"].email
    home = factory.client()
    assert (await _login(home, email)).status_code == 200  # the owner's usual address
    # The first sign-in took one of the 4 slots; a different address each time below, so
    # only the account counter can fire.
    for _ in range(3):
        assert (await _login(factory.client(), email, "wrong-password")).status_code == 401
    r = await _login(factory.client(), email)
    assert _problem(r, 429, "rate_limited")["limit"] == "login_account"
    assert (await _login(home, email)).status_code == 200


async def test_concurrent_wrong_passwords_reach_the_check_at_most_limit_times(
    world: World, factory: Factory, runtime: Runtime, owner_engine: AsyncEngine
) -> None:
    email = world.a["viewer"].email
    limit = runtime.settings.login_max_failures_per_account
    attacker = factory.client()
    results = await asyncio.gather(*(_login(attacker, email, "wrong-password") for _ in range(100)))
    codes = [r.status_code for r in results]
    assert codes.count(401) == limit
    assert codes.count(429) == 100 - limit
    # Every password check left an audit row: exactly `limit` of them.
    assert len(await _audit(owner_engine, "auth.login_failed")) == limit


async def test_forwarded_for_is_believed_only_from_trusted_proxies(
    world: World, factory: Factory, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    email = world.a["viewer"].email
    limit = runtime.settings.login_max_failures_per_account
    proxy = factory.client()
    # Untrusted: a client that rotates X-Forwarded-For is still one address.
    for n in range(limit):
        r = await proxy.post(
            LOGIN,
            json={"email": email, "password": "wrong-password"},
            headers={"X-Forwarded-For": f"203.0.113.{n}"},
        )
        assert r.status_code == 401
    r = await proxy.post(
        LOGIN, json={"email": email, "password": PASSWORD}, headers={"X-Forwarded-For": "1.2.3.4"}
    )
    assert r.status_code == 429
    # Trusted (the ASGI test clients come from 10.0.0.0/24): the forwarded address counts,
    # read from the right, skipping trusted hops; a spoofed left-most entry changes nothing.
    monkeypatch.setattr(runtime.settings, "trusted_proxies", "10.0.0.0/24")
    client = factory.client()
    for _ in range(limit):
        r = await client.post(
            LOGIN,
            json={"email": email, "password": "wrong-password"},
            headers={"X-Forwarded-For": "198.51.100.7, 10.0.0.99"},
        )
        assert r.status_code == 401
    spoofed = await client.post(
        LOGIN,
        json={"email": email, "password": PASSWORD},
        headers={"X-Forwarded-For": "192.0.2.1, 198.51.100.7"},
    )
    assert _problem(spoofed, 429, "rate_limited")["limit"] == "login_account_address"
    other = await client.post(
        LOGIN, json={"email": email, "password": PASSWORD}, headers={"X-Forwarded-For": "192.0.2.1"}
    )
    assert other.status_code == 200, other.text


@pytest.mark.usefixtures("one_throttle_window")
async def test_login_is_throttled_per_address(
    world: World, factory: Factory, runtime: Runtime
) -> None:
    client = factory.client()  # one client address
    limit = runtime.settings.login_max_failures_per_ip
    for n in range(limit):
        r = await _login(client, f"guess-{n}@example.com", "wrong-password")
        assert r.status_code == 401
    r = await _login(client, world.a["admin"].email)
    body = _problem(r, 429, "rate_limited")
    assert body["limit"] == "login_ip"
    assert int(r.headers["retry-after"]) > 0
    # The account itself is fine from another address.
    assert (await _login(factory.client(), world.a["admin"].email)).status_code == 200


@pytest.mark.usefixtures("one_throttle_window")
async def test_a_successful_login_clears_the_account_counter(
    world: World, factory: Factory, runtime: Runtime
) -> None:
    email = world.a["viewer"].email
    limit = runtime.settings.login_max_failures_per_account
    for _ in range(limit - 1):
        await _login(factory.client(), email, "wrong-password")
    assert (await _login(factory.client(), email)).status_code == 200
    for _ in range(limit - 1):
        await _login(factory.client(), email, "wrong-password")
    assert (await _login(factory.client(), email)).status_code == 200


# --- refresh, rotation, family revocation, logout ------------------------------------------------


async def test_refresh_rotates_the_pair(world: World) -> None:
    first = (await _login(world.anonymous, world.a["developer"].email)).json()
    r = await world.anonymous.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["user"]["tenant"]["id"] == str(world.tenant_a.id)
    me = await world.anonymous.get(
        ME, headers={"Authorization": f"Bearer {second['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json()["id"] == str(world.a["developer"].user_id)
    # The spent token does not work again.
    again = await world.anonymous.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    _problem(again, 401, "unauthorized")


async def test_reuse_of_a_spent_refresh_token_revokes_the_family(
    world: World, owner_engine: AsyncEngine
) -> None:
    c = world.anonymous
    first = (await _login(c, world.a["admin"].email)).json()
    second = (await c.post(REFRESH, json={"refresh_token": first["refresh_token"]})).json()
    # An attacker replays the first (spent) token ...
    _problem(
        await c.post(REFRESH, json={"refresh_token": first["refresh_token"]}), 401, "unauthorized"
    )
    # ... and the legitimate newer one stops working too.
    _problem(
        await c.post(REFRESH, json={"refresh_token": second["refresh_token"]}), 401, "unauthorized"
    )
    events = await _audit(owner_engine, "auth.refresh_reuse")
    assert len(events) == 1
    assert events[0]["actor_id"] == world.a["admin"].user_id
    assert events[0]["details"]["revoked"] >= 1


async def test_a_family_is_independent_of_other_sessions(world: World, factory: Factory) -> None:
    email = world.a["admin"].email
    laptop = (await _login(factory.client(), email)).json()
    phone = (await _login(factory.client(), email)).json()
    spent = laptop["refresh_token"]
    await world.anonymous.post(REFRESH, json={"refresh_token": spent})
    await world.anonymous.post(REFRESH, json={"refresh_token": spent})  # laptop family revoked
    r = await world.anonymous.post(REFRESH, json={"refresh_token": phone["refresh_token"]})
    assert r.status_code == 200, r.text


async def test_expired_refresh_token(world: World, owner_engine: AsyncEngine) -> None:
    pair = (await _login(world.anonymous, world.a["viewer"].email)).json()
    async with owner_engine.begin() as conn:
        await conn.execute(text("update refresh_tokens set expires_at = now() - interval '1 s'"))
    r = await world.anonymous.post(REFRESH, json={"refresh_token": pair["refresh_token"]})
    _problem(r, 401, "unauthorized")


@pytest.mark.parametrize("token", ["rt_unknown", "x" * 512, "eyJhbGciOiJIUzI1NiJ9.e30.x"])
async def test_unknown_refresh_token(world: World, token: str) -> None:
    r = await world.anonymous.post(REFRESH, json={"refresh_token": token})
    _problem(r, 401, "unauthorized")


async def test_access_token_is_not_a_refresh_token(world: World) -> None:
    r = await world.anonymous.post(REFRESH, json={"refresh_token": world.a["admin"].token})
    _problem(r, 401, "unauthorized")


async def test_logout_revokes_the_family(world: World, owner_engine: AsyncEngine) -> None:
    c = world.anonymous
    first = (await _login(c, world.a["operator"].email)).json()
    second = (await c.post(REFRESH, json={"refresh_token": first["refresh_token"]})).json()
    r = await c.post(LOGOUT, json={"refresh_token": second["refresh_token"]})
    assert r.status_code == 204
    assert r.content == b""
    _problem(
        await c.post(REFRESH, json={"refresh_token": second["refresh_token"]}), 401, "unauthorized"
    )
    events = await _audit(owner_engine, "auth.logout")
    assert [e["actor_id"] for e in events] == [world.a["operator"].user_id]
    # Logging out twice, or with an unknown token, is quiet and records nothing more.
    assert (
        await c.post(LOGOUT, json={"refresh_token": second["refresh_token"]})
    ).status_code == 204
    assert (await c.post(LOGOUT, json={"refresh_token": "rt_nothing"})).status_code == 204
    assert len(await _audit(owner_engine, "auth.logout")) == 2


# --- me, switch-tenant ---------------------------------------------------------------------------


async def test_me(world: World) -> None:
    r = await world.a["operator"].client.get(ME)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == str(world.a["operator"].user_id)
    assert body["role"] == "operator"
    assert body["tenant"]["id"] == str(world.tenant_a.id)
    assert [t["id"] for t in body["tenants"]] == [str(world.tenant_a.id)]


async def test_switch_tenant(world: World, factory: Factory) -> None:
    actor = world.a["developer"]
    other = await factory.tenant(name="Switch Target")
    await factory.membership(other, actor.user_id, "admin")
    r = await actor.client.post(SWITCH, json={"tenant_id": str(other.id)})
    assert r.status_code == 200, r.text
    pair = r.json()
    claims = jwt.decode(pair["access_token"], options={"verify_signature": False})
    assert claims["tid"] == str(other.id)
    assert pair["user"]["tenant"]["id"] == str(other.id)
    assert pair["user"]["role"] == "admin"
    # The new refresh token keeps the new tenant.
    refreshed = await world.anonymous.post(REFRESH, json={"refresh_token": pair["refresh_token"]})
    assert refreshed.json()["user"]["tenant"]["id"] == str(other.id)


async def test_switch_to_a_tenant_one_is_not_a_member_of(world: World) -> None:
    for actor in world.a.values():
        r = await actor.client.post(SWITCH, json={"tenant_id": str(world.tenant_b.id)})
        body = _problem(r, 404, "not_found")
        assert world.tenant_b.name not in r.text
        assert body["status"] == 404
    # A system admin may know every tenant: the answer says why.
    r = await world.system_admin.client.post(SWITCH, json={"tenant_id": str(world.tenant_b.id)})
    _problem(r, 403, "not_a_member")
    r = await world.a["admin"].client.post(SWITCH, json={"tenant_id": str(uuid.uuid4())})
    _problem(r, 404, "not_found")


async def test_switch_needs_a_signed_in_user(world: World) -> None:
    r = await world.anonymous.post(SWITCH, json={"tenant_id": str(world.tenant_a.id)})
    _problem(r, 401, "unauthorized")


# --- suspension and removal ----------------------------------------------------------------------


async def _suspend(owner_engine: AsyncEngine, tenant_id: uuid.UUID) -> None:
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("update tenants set status = 'suspended' where id = :id"), {"id": tenant_id}
        )


async def test_login_into_a_suspended_tenant(
    world: World, factory: Factory, owner_engine: AsyncEngine, app: Any
) -> None:
    admin = world.a["admin"]
    pair = (await _login(factory.client(), admin.email)).json()
    await _suspend(owner_engine, world.tenant_a.id)
    r = await _login(factory.client(), admin.email, tenant_id=str(world.tenant_a.id))
    _problem(r, 403, "tenant_suspended")
    r = await _login(factory.client(), admin.email)  # the only tenant is suspended
    _problem(r, 403, "tenant_suspended")
    r = await world.anonymous.post(REFRESH, json={"refresh_token": pair["refresh_token"]})
    _problem(r, 403, "tenant_suspended")
    r = await admin.client.get(_tenant_list_route(app))
    _problem(r, 403, "tenant_suspended")


async def test_a_removed_member_loses_access_at_once(
    world: World, owner_engine: AsyncEngine, app: Any
) -> None:
    actor = world.a["operator"]
    pair = (await _login(world.anonymous, actor.email)).json()
    route = _tenant_list_route(app)
    assert (await actor.client.get(route)).status_code == 200
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("delete from memberships where tenant_id = :t and user_id = :u"),
            {"t": world.tenant_a.id, "u": actor.user_id},
        )
    # The old access token is still signed and unexpired, yet the membership is re-read.
    r = await actor.client.get(route)
    assert r.status_code in (401, 404), r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    r = await actor.client.get(f"/api/v1/tenants/{world.tenant_a.id}")
    assert r.status_code == 404, r.text
    r = await world.anonymous.post(REFRESH, json={"refresh_token": pair["refresh_token"]})
    _problem(r, 401, "unauthorized")
    me = (await actor.client.get(ME)).json()
    assert me["tenant"] is None
    assert me["tenants"] == []


async def test_a_demoted_member_loses_rights_at_once(
    world: World, owner_engine: AsyncEngine, app: Any
) -> None:
    """The role is read on every request, not taken from the token."""
    actor = world.a["admin"]
    before = (await actor.client.get(ME)).json()
    assert before["role"] == "admin"
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("update memberships set role = 'viewer' where tenant_id = :t and user_id = :u"),
            {"t": world.tenant_a.id, "u": actor.user_id},
        )
    after = (await actor.client.get(ME)).json()
    assert after["role"] == "viewer"
