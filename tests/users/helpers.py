"""Shared steps of the member and invitation tests."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.fixtures.factories import Actor


def new_email(prefix: str = "invitee") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"


async def invite(actor: Actor, tenant_id: uuid.UUID, email: str, **extra: Any) -> dict[str, Any]:
    r = await actor.client.post(
        f"/api/v1/tenants/{tenant_id}/users/invite", json={"email": email, **extra}
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[dict[str, Any]]:
    """Read as the owner (no row-level security): what the database really holds."""
    async with engine.connect() as conn:
        result = await conn.execute(text(sql), params)
        return [dict(r._mapping) for r in result]


async def execute(engine: AsyncEngine, sql: str, **params: Any) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(sql), params)
