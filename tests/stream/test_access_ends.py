"""A stream ends as soon as its caller's access ends, not when the access token expires."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from iiot.runtime import Runtime
from tests.fixtures.factories import World
from tests.rules.helpers import make_device, send
from tests.stream.test_stream import SSE, Events, http, open_stream


async def _ended(events: Events) -> None:
    async with asyncio.timeout(5):
        await events.task  # the server closed the response


async def test_a_removed_member_s_stream_is_revoked_at_once(
    live_server: str, runtime: Runtime, world: World
) -> None:
    viewer, operator = world.a["viewer"], world.a["operator"]
    device = await make_device(world.a["developer"])
    async with (
        http(live_server) as client,
        open_stream(client, viewer, [device["id"]]) as removed,
        open_stream(client, operator, [device["id"]]) as kept,
    ):
        r = await world.a["admin"].client.delete(
            f"/api/v1/tenants/{world.tenant_a.id}/users/{viewer.user_id}"
        )
        assert r.status_code == 204, r.text
        await _ended(removed)
        assert [event for event, _ in removed.items] == ["ready", "revoked"]
        # Another member's stream goes on.
        await send(runtime, operator.client, device["id"], {"temperature": 20})
        await kept.wait_for("telemetry")
        assert kept.of("revoked") == []
        # The token has not expired, but a new stream is refused.
        r = await client.get("/api/v1/stream", headers={**SSE, **viewer.headers})
        assert r.status_code == 404, r.text
        assert r.json()["detail"] == "tenant not found"


async def test_a_disabled_account_s_streams_end_in_every_tenant(
    live_server: str, world: World, owner_engine: AsyncEngine
) -> None:
    viewer, admin = world.a["viewer"], world.a["admin"]
    async with (
        http(live_server) as client,
        open_stream(client, viewer) as disabled,
        open_stream(client, admin) as kept,
    ):
        async with owner_engine.begin() as conn:
            await conn.execute(
                text("update users set status = 'disabled' where id = :id"),
                {"id": viewer.user_id},
            )
        await _ended(disabled)
        assert disabled.of("revoked") == [{}]
        await asyncio.sleep(0.2)
        assert kept.of("revoked") == []
        assert not kept.task.done()
