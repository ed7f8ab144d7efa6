"""Invitations: e-mailed token (real SMTP server), single use, expiry, revocation, re-sending."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from iiot import mail
from iiot.runtime import Runtime
from tests.fixtures.factories import PASSWORD, Factory, World
from tests.mail.smtp_server import Inbox, accept_token, body_of
from tests.users.helpers import execute, invite, new_email, rows

NEW_PASSWORD = "a-long-new-password-42"


async def _outbox_row_once_sent(owner_engine: AsyncEngine) -> dict[str, Any]:
    """The one mail_outbox row, once it is no longer pending (or as it is after 5 s)."""
    deadline = asyncio.get_running_loop().time() + 5
    while True:
        [outbox] = await rows(owner_engine, "select * from mail_outbox")
        if outbox["status"] != "pending" or asyncio.get_running_loop().time() > deadline:
            return outbox
        await asyncio.sleep(0.01)


async def test_invitation_mail_token_accepts_once(
    world: World, smtp_inbox: Inbox, runtime: Runtime, owner_engine: AsyncEngine
) -> None:
    email = new_email()
    r = await world.a["admin"].client.post(
        f"/api/v1/tenants/{world.tenant_a.id}/users/invite",
        json={"email": email, "role": "operator"},
    )
    assert r.status_code == 201, r.text
    invitation = r.json()
    assert invitation["email"] == email
    assert invitation["role"] == "operator"
    assert invitation["is_tenant_admin"] is False
    assert invitation["status"] == "pending"
    assert invitation["tenant_id"] == str(world.tenant_a.id)

    [message] = await smtp_inbox.wait_for(1)
    assert message["To"] == email
    assert world.tenant_a.name in message["Subject"]
    text = body_of(message)
    assert text.count("http://iiot.test/invitations/accept?token=") == 1
    token = accept_token(message)
    assert len(token) >= 43  # 256 random bits, url-safe base64
    assert token not in r.text

    # Only the digest is stored; the delivered message keeps no copy of the link.
    [stored] = await rows(owner_engine, "select * from invitations")
    assert stored["token_hash"] == hashlib.sha256(token.encode()).digest()
    # The server has the message before the sender hears its 250 and marks the row sent.
    outbox = await _outbox_row_once_sent(owner_engine)
    assert outbox["status"] == "sent"
    assert outbox["body"] is None

    # The invitee is listed as invited.
    r = await world.a["admin"].client.get(f"/api/v1/tenants/{world.tenant_a.id}/users")
    listed = {u["email"]: u for u in r.json()["users"]}
    assert listed[email]["status"] == "invited"
    assert listed[email]["user_id"] == invitation["user_id"]

    anon = world.anonymous
    r = await anon.post(
        "/api/v1/invitations/accept",
        json={"token": token, "password": NEW_PASSWORD, "full_name": "Ivy Invitee"},
    )
    assert r.status_code == 200, r.text
    pair = r.json()
    assert pair["user"]["email"] == email
    assert pair["user"]["full_name"] == "Ivy Invitee"
    assert pair["user"]["tenant"]["id"] == str(world.tenant_a.id)
    assert pair["user"]["role"] == "operator"

    # The new tokens work, and so does a login with the chosen password.
    r = await anon.get(
        f"/api/v1/tenants/{world.tenant_a.id}",
        headers={"Authorization": f"Bearer {pair['access_token']}"},
    )
    assert r.status_code == 200, r.text
    r = await anon.post("/api/v1/auth/login", json={"email": email, "password": NEW_PASSWORD})
    assert r.status_code == 200, r.text

    # Single use.
    r = await anon.post(
        "/api/v1/invitations/accept", json={"token": token, "password": NEW_PASSWORD}
    )
    assert r.status_code == 410, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["reason"] == "used"

    r = await world.a["admin"].client.get(f"/api/v1/tenants/{world.tenant_a.id}/users")
    listed = {u["email"]: u for u in r.json()["users"]}
    assert listed[email]["status"] == "active"
    # Before acceptance the tenant's trail names the invitation, not the account.
    events = await rows(
        owner_engine,
        "select action from audit_events where target_id in (:i, :u) order by created_at",
        i=invitation["id"],
        u=pair["user"]["id"],
    )
    assert [e["action"] for e in events] == ["member.invite", "member.accept"]


async def test_expired_invitation_is_refused_and_changes_nothing(
    world: World, smtp_inbox: Inbox, owner_engine: AsyncEngine
) -> None:
    email = new_email()
    await invite(world.a["admin"], world.tenant_a.id, email)
    [message] = await smtp_inbox.wait_for(1)
    await execute(owner_engine, "update invitations set expires_at = now() - interval '1 second'")
    r = await world.anonymous.post(
        "/api/v1/invitations/accept",
        json={"token": accept_token(message), "password": NEW_PASSWORD},
    )
    assert r.status_code == 410, r.text
    assert r.json()["reason"] == "expired"
    [user] = await rows(owner_engine, "select * from users where email = :e", e=email)
    assert user["status"] == "invited"
    assert user["password_hash"] is None
    [m] = await rows(
        owner_engine, "select status from memberships where user_id = :u", u=user["id"]
    )
    assert m["status"] == "invited"


async def test_invitation_expiry_follows_the_setting(
    world: World, runtime: Runtime, owner_engine: AsyncEngine
) -> None:
    original = runtime.settings
    runtime.settings = original.model_copy(update={"invitation_ttl_days": 2})
    try:
        body = await invite(world.a["admin"], world.tenant_a.id, new_email())
    finally:
        runtime.settings = original
    [row] = await rows(owner_engine, "select expires_at - created_at as ttl from invitations")
    assert 2 * 86400 - 60 < row["ttl"].total_seconds() <= 2 * 86400 + 60
    assert body["expires_at"].endswith("Z") or "+00:00" in body["expires_at"]


async def test_revoked_invitation_token_is_useless(
    world: World, smtp_inbox: Inbox, owner_engine: AsyncEngine
) -> None:
    email = new_email()
    body = await invite(world.a["admin"], world.tenant_a.id, email)
    [message] = await smtp_inbox.wait_for(1)
    r = await world.a["admin"].client.delete(
        f"/api/v1/tenants/{world.tenant_a.id}/users/{body['user_id']}"
    )
    assert r.status_code == 204, r.text
    r = await world.anonymous.post(
        "/api/v1/invitations/accept",
        json={"token": accept_token(message), "password": NEW_PASSWORD},
    )
    assert r.status_code == 410, r.text
    assert r.json()["reason"] == "revoked"
    assert (
        await rows(
            owner_engine,
            "select * from memberships where user_id = :u",
            u=uuid.UUID(body["user_id"]),
        )
        == []
    )
    [event] = await rows(
        owner_engine, "select * from audit_events where action = 'member.invitation_revoke'"
    )
    assert event["after"]["revoked_invitations"] == 1


async def test_garbled_and_unknown_tokens(world: World) -> None:
    anon = world.anonymous
    for token in ("inv_" + "A" * 43, "garbage", "' or 1=1 --", "x" * 512):
        r = await anon.post(
            "/api/v1/invitations/accept", json={"token": token, "password": NEW_PASSWORD}
        )
        assert r.status_code == 400, (token, r.text)
        assert r.json()["reason"] == "invalid_invitation"
    for body in ({}, {"token": ""}, {"token": "x" * 513}, {"token": "a", "extra": 1}):
        r = await anon.post("/api/v1/invitations/accept", json=body)
        assert r.status_code == 422, (body, r.text)


async def test_password_rules_on_accept_change_nothing(
    world: World, smtp_inbox: Inbox, owner_engine: AsyncEngine
) -> None:
    email = new_email()
    await invite(world.a["admin"], world.tenant_a.id, email)
    [message] = await smtp_inbox.wait_for(1)
    token = accept_token(message)
    for password in (None, "short", email, email.upper()):
        payload: dict[str, object] = {"token": token}
        if password is not None:
            payload["password"] = password
        r = await world.anonymous.post("/api/v1/invitations/accept", json=payload)
        assert r.status_code == 422, (password, r.text)
    [user] = await rows(owner_engine, "select * from users where email = :e", e=email)
    assert user["password_hash"] is None
    # The token is still good after the refusals.
    r = await world.anonymous.post(
        "/api/v1/invitations/accept", json={"token": token, "password": NEW_PASSWORD}
    )
    assert r.status_code == 200, r.text


async def test_existing_account_must_give_its_password(
    world: World, factory: Factory, smtp_inbox: Inbox
) -> None:
    # tenant B's admin is invited into tenant A
    email = world.b_admin.email
    await invite(world.a["admin"], world.tenant_a.id, email, role="developer")
    [message] = await smtp_inbox.wait_for(1)
    token = accept_token(message)
    for payload in ({"token": token}, {"token": token, "password": "not-the-password"}):
        r = await world.anonymous.post("/api/v1/invitations/accept", json=payload)
        assert r.status_code == 401, r.text
    r = await world.anonymous.post(
        "/api/v1/invitations/accept", json={"token": token, "password": PASSWORD}
    )
    assert r.status_code == 200, r.text
    tenants = {t["id"]: t["role"] for t in r.json()["user"]["tenants"]}
    assert tenants == {str(world.tenant_b.id): "admin", str(world.tenant_a.id): "developer"}


async def test_reinvite_resends_extends_and_replaces_the_token(
    world: World, smtp_inbox: Inbox, owner_engine: AsyncEngine
) -> None:
    email = new_email()
    first = await invite(world.a["admin"], world.tenant_a.id, email)
    [m1] = await smtp_inbox.wait_for(1)
    await execute(owner_engine, "update invitations set expires_at = now() + interval '1 hour'")
    r = await world.a["admin"].client.post(
        f"/api/v1/tenants/{world.tenant_a.id}/users/invite",
        json={"email": email.upper(), "role": "developer"},
    )
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["id"] == first["id"]
    assert second["user_id"] == first["user_id"]
    assert second["role"] == "developer"
    assert second["expires_at"] > first["expires_at"]
    _, m2 = await smtp_inbox.wait_for(2)
    old, new = accept_token(m1), accept_token(m2)
    assert old != new
    r = await world.anonymous.post(
        "/api/v1/invitations/accept", json={"token": old, "password": NEW_PASSWORD}
    )
    assert r.status_code == 400, r.text
    r = await world.anonymous.post(
        "/api/v1/invitations/accept", json={"token": new, "password": NEW_PASSWORD}
    )
    assert r.status_code == 200, r.text
    assert r.json()["user"]["role"] == "developer"
    actions = [
        e["action"]
        for e in await rows(owner_engine, "select action from audit_events order by created_at")
    ]
    assert actions == ["member.invite", "member.reinvite", "member.accept"]


async def test_inviting_a_member_is_a_conflict(world: World, owner_engine: AsyncEngine) -> None:
    r = await world.a["admin"].client.post(
        f"/api/v1/tenants/{world.tenant_a.id}/users/invite",
        json={"email": world.a["viewer"].email},
    )
    assert r.status_code == 409, r.text
    assert await rows(owner_engine, "select * from invitations") == []


async def test_bad_invitation_requests_change_nothing(
    world: World, owner_engine: AsyncEngine
) -> None:
    url = f"/api/v1/tenants/{world.tenant_a.id}/users/invite"
    bad = [
        {},
        {"email": "not-an-email"},
        {"email": "a@" + "b" * 320 + ".com"},
        {"email": new_email(), "role": "owner"},
        {"email": new_email(), "role": "viewer", "is_tenant_admin": True},
        {"email": new_email(), "is_tenant_admin": "maybe"},
        {"email": new_email(), "token": "mine"},
    ]
    for body in bad:
        r = await world.a["admin"].client.post(url, json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["code"] == "validation_error"
    r = await world.a["admin"].client.post(
        url, content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert await rows(owner_engine, "select * from invitations") == []
    assert await rows(owner_engine, "select * from users where status = 'invited'") == []


async def test_is_tenant_admin_true_invites_an_admin(world: World) -> None:
    body = await invite(world.a["admin"], world.tenant_a.id, new_email(), is_tenant_admin=True)
    assert body["role"] == "admin"
    assert body["is_tenant_admin"] is True


async def test_failed_delivery_never_loses_the_invitation(
    world: World, smtp_inbox: Inbox, runtime: Runtime, owner_engine: AsyncEngine
) -> None:
    smtp_inbox.refuse = True
    email = new_email()
    await invite(world.a["admin"], world.tenant_a.id, email)
    await mail.wait_idle(runtime)
    [queued] = await rows(owner_engine, "select * from mail_outbox")
    assert queued["status"] == "pending"
    assert queued["attempts"] == 1
    assert len(await rows(owner_engine, "select * from invitations")) == 1

    smtp_inbox.refuse = False
    await execute(owner_engine, "update mail_outbox set next_attempt_at = now()")
    assert (await mail.deliver_pending(runtime)).sent == 1
    [message] = smtp_inbox.to(email)
    r = await world.anonymous.post(
        "/api/v1/invitations/accept",
        json={"token": accept_token(message), "password": NEW_PASSWORD},
    )
    assert r.status_code == 200, r.text


async def test_accept_into_a_suspended_tenant_is_refused(world: World, smtp_inbox: Inbox) -> None:
    await invite(world.a["admin"], world.tenant_a.id, new_email())
    [message] = await smtp_inbox.wait_for(1)
    r = await world.system_admin.client.post(f"/api/v1/tenants/{world.tenant_a.id}/suspend")
    assert r.status_code == 200, r.text
    r = await world.anonymous.post(
        "/api/v1/invitations/accept",
        json={"token": accept_token(message), "password": NEW_PASSWORD},
    )
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "tenant_suspended"
