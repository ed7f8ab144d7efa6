"""Accounts people manage themselves: password change, reset by e-mail, sign-out (issue 13)."""

from __future__ import annotations

import hashlib

from sqlalchemy.ext.asyncio import AsyncEngine

from iiot.auth.service import RESET_MAX_PER_ACCOUNT
from iiot.identity.denylist import MemoryDenyList, RedisDenyList
from tests.fixtures.factories import PASSWORD, Factory, World
from tests.mail.smtp_server import Inbox, accept_token
from tests.users.helpers import execute, rows

NEW = "a-brand-new-passphrase"
LOGIN = "/api/v1/auth/login"


async def _login(client, email: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    return await client.post(LOGIN, json={"email": email, "password": password})


async def test_logout_stops_the_access_token_it_came_with(world: World) -> None:
    r = await _login(world.anonymous, world.a["viewer"].email)
    pair = r.json()
    auth = {"Authorization": f"Bearer {pair['access_token']}"}
    assert (await world.anonymous.get("/api/v1/auth/me", headers=auth)).status_code == 200
    r = await world.anonymous.post(
        "/api/v1/auth/logout", json={"refresh_token": pair["refresh_token"]}, headers=auth
    )
    assert r.status_code == 204
    r = await world.anonymous.get("/api/v1/auth/me", headers=auth)
    assert r.status_code == 401
    assert r.json()["reason"] == "signed_out"
    r = await world.anonymous.get("/api/v1/devices", headers=auth)
    assert r.status_code == 401
    r = await world.anonymous.post(
        "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert r.status_code == 401


async def test_change_password_needs_the_current_one_and_ends_other_sessions(
    world: World, owner_engine: AsyncEngine
) -> None:
    email = world.a["operator"].email
    other = (await _login(world.anonymous, email)).json()
    mine = (await _login(world.anonymous, email)).json()
    auth = {"Authorization": f"Bearer {mine['access_token']}"}
    r = await world.anonymous.post(
        "/api/v1/auth/password",
        json={"current_password": "wrong-password-here", "new_password": NEW},
        headers=auth,
    )
    assert r.status_code == 403, r.text
    assert r.json()["reason"] == "wrong_password"
    r = await world.anonymous.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "short"},
        headers=auth,
    )
    assert r.status_code == 422
    assert (await _login(world.anonymous, email)).status_code == 200  # unchanged so far
    r = await world.anonymous.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    fresh = r.json()
    assert fresh["user"]["email"] == email
    # The old password no longer works, the new one does.
    assert (await _login(world.anonymous, email)).status_code == 401
    assert (await _login(world.anonymous, email, NEW)).status_code == 200
    # Other sessions' refresh tokens are revoked; the access token used is stopped.
    for old in (other, mine):
        r = await world.anonymous.post(
            "/api/v1/auth/refresh", json={"refresh_token": old["refresh_token"]}
        )
        assert r.status_code == 401
    assert (await world.anonymous.get("/api/v1/auth/me", headers=auth)).status_code == 401
    new_auth = {"Authorization": f"Bearer {fresh['access_token']}"}
    assert (await world.anonymous.get("/api/v1/auth/me", headers=new_auth)).status_code == 200
    events = await rows(owner_engine, "select action from platform_audit_events")
    assert "auth.password_change" in {e["action"] for e in events}


async def test_password_reset_by_email(
    world: World, smtp_inbox: Inbox, owner_engine: AsyncEngine, factory: Factory
) -> None:
    email = world.a["developer"].email
    session = (await _login(world.anonymous, email)).json()
    for address in (email, "nobody-here@example.com"):
        r = await world.anonymous.post("/api/v1/auth/password-reset", json={"email": address})
        assert r.status_code == 202
    [message] = await smtp_inbox.wait_for(1)
    assert message["To"] == email
    token = accept_token(message)
    assert token.startswith("pr_")
    assert len(token) - 3 >= 43  # 256 random bits
    [stored] = await rows(owner_engine, "select * from password_reset_tokens")
    assert stored["token_hash"] == hashlib.sha256(token.encode()).digest()
    assert (stored["expires_at"] - stored["created_at"]).total_seconds() == 3600
    assert token not in str(await rows(owner_engine, "select * from mail_outbox"))

    confirm = "/api/v1/auth/password-reset/confirm"
    r = await world.anonymous.post(confirm, json={"token": token, "password": "short"})
    assert r.status_code == 422
    r = await world.anonymous.post(confirm, json={"token": token, "password": NEW})
    assert r.status_code == 204, r.text
    assert (await _login(world.anonymous, email, NEW)).status_code == 200
    assert (await _login(world.anonymous, email)).status_code == 401
    r = await world.anonymous.post(
        "/api/v1/auth/refresh", json={"refresh_token": session["refresh_token"]}
    )
    assert r.status_code == 401  # every session ended
    # Single use.
    r = await world.anonymous.post(confirm, json={"token": token, "password": NEW + "x"})
    assert r.status_code == 400
    assert r.json()["reason"] == "invalid_reset_token"


async def test_password_reset_tokens_expire_and_requests_are_throttled(
    world: World, smtp_inbox: Inbox, owner_engine: AsyncEngine
) -> None:
    email = world.a["admin"].email
    r = await world.anonymous.post("/api/v1/auth/password-reset", json={"email": email})
    assert r.status_code == 202
    [message] = await smtp_inbox.wait_for(1)
    token = accept_token(message)
    await execute(owner_engine, "update password_reset_tokens set expires_at = now()")
    r = await world.anonymous.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "password": NEW}
    )
    assert r.status_code == 400
    for _ in range(RESET_MAX_PER_ACCOUNT + 3):
        r = await world.anonymous.post("/api/v1/auth/password-reset", json={"email": email})
        assert r.status_code == 202
    count = await rows(owner_engine, "select count(*) as n from password_reset_tokens")
    assert count[0]["n"] == RESET_MAX_PER_ACCOUNT


async def test_the_reset_page_is_served_without_rendering_a_token(world: World) -> None:
    r = await world.anonymous.get("/password-reset", params={"token": "pr_secret-value"})
    assert r.status_code == 200
    assert "pr_secret-value" not in r.text
    assert "/api/v1/auth/password-reset/confirm" in r.text
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


async def test_deny_lists_hold_a_jti_until_its_expiry() -> None:
    from datetime import UTC, datetime, timedelta

    soon = datetime.now(UTC) + timedelta(seconds=60)
    past = datetime.now(UTC) - timedelta(seconds=1)
    lists = [MemoryDenyList(), RedisDenyList("redis://127.0.0.1:6379/13")]
    for deny in lists:
        await deny.deny("jti-a", soon)
        await deny.deny("jti-b", past)
        assert await deny.is_denied("jti-a")
        assert not await deny.is_denied("jti-b")
        assert not await deny.is_denied("jti-c")
    redis_list = lists[1]
    assert isinstance(redis_list, RedisDenyList)
    # Shared across processes: a second client of the same Redis sees the entry.
    other = RedisDenyList("redis://127.0.0.1:6379/13")
    assert await other.is_denied("jti-a")
    await redis_list._redis.delete("iiot:jti:jti-a")
    await redis_list.close()
    await other.close()
