"""The page behind an invitation e-mail's link."""

from __future__ import annotations

import re

import httpx

from tests.fixtures.factories import World


async def test_page_is_served_without_reflecting_the_token(world: World) -> None:
    marker = "<script>alert(1)</script>"
    r = await world.anonymous.get("/invitations/accept", params={"token": marker})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert marker not in r.text  # the token is read by the page's script, never rendered
    assert "/api/v1/invitations/accept" in r.text
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["cache-control"] == "no-store"


async def test_link_from_the_invitation_opens_the_page_and_its_token_accepts(
    world: World,
    runtime,
    owner_engine,  # type: ignore[no-untyped-def]
) -> None:
    from sqlalchemy import text

    admin = world.a["admin"]
    r = await admin.client.post(
        f"/api/v1/tenants/{world.tenant_a.id}/users/invite",
        json={"email": "page-invitee@example.com", "role": "viewer"},
    )
    assert r.status_code == 201, r.text
    async with owner_engine.connect() as conn:
        body = (
            await conn.execute(
                text("select body from mail_outbox where to_address = :r"),
                {"r": "page-invitee@example.com"},
            )
        ).scalar_one()
    link = re.search(r"https?://\S+/invitations/accept\?token=\S+", body)
    assert link is not None, body
    url = httpx.URL(link.group(0))
    page = await world.anonymous.get(url.path, params=dict(url.params))
    assert page.status_code == 200
    accepted = await world.anonymous.post(
        "/api/v1/invitations/accept",
        json={"token": url.params["token"], "password": "a-long-enough-password"},
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["user"]["tenant"]["id"] == str(world.tenant_a.id)
