"""E-mail and webhook calls share one outbox mechanism: one job, one retry policy, one lease,
and what keeps failing is parked where the tenant's admins see it."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from iiot import mail
from iiot.delivery import loop as delivery
from iiot.delivery.retry import MAX_ATTEMPTS
from iiot.notifications import webhooks
from iiot.outbox.module import deliver_pending
from iiot.runtime import Runtime
from iiot.tenancy.context import system_context
from tests.fixtures.factories import World
from tests.fixtures.ports import free_port
from tests.mail.smtp_server import Inbox
from tests.rules.conftest import allow_local_webhooks
from tests.rules.helpers import webhook_server

__all__ = ["allow_local_webhooks"]  # the rules tests' fixture, used here too

SECRET = "s" * 32


async def _queue_call(runtime: Runtime, tenant_id: uuid.UUID, url: str) -> uuid.UUID:
    ctx = system_context(tenant_id)
    async with runtime.db.tenant(ctx) as session:
        return await webhooks.enqueue(
            session, ctx, rule_id=None, url=url, secret=SECRET, payload={"event": "test"}
        )


async def _make_due(owner_engine: AsyncEngine) -> None:
    async with owner_engine.begin() as conn:
        await conn.execute(text("update mail_outbox set next_attempt_at = now()"))
        await conn.execute(text("update webhook_deliveries set next_attempt_at = now()"))


async def _one(owner_engine: AsyncEngine, table: str) -> dict[str, object]:
    async with owner_engine.connect() as conn:
        [row] = (await conn.execute(text(f"select * from {table}"))).mappings().all()
    return dict(row)


async def test_one_job_delivers_mail_and_webhook_calls(
    world: World,
    runtime: Runtime,
    smtp_inbox: Inbox,
    owner_engine: AsyncEngine,
    allow_local_webhooks: None,
) -> None:
    tenant_id = world.tenant_a.id
    async with webhook_server() as hook:
        async with runtime.db.system() as session:
            await mail.enqueue(
                session, to="ops@example.com", subject="Both", body="b", tenant_id=tenant_id
            )
        await _queue_call(runtime, tenant_id, hook.url)
        report = await deliver_pending(runtime)
        assert (report.sent, report.handled) == (2, 2)
        assert [m["Subject"] for m in smtp_inbox.messages] == ["Both"]
        [call] = hook.received
    ts = call.headers["x-iiot-timestamp"]
    expected = hmac.new(SECRET.encode(), f"{ts}.".encode() + call.body, hashlib.sha256)
    assert hmac.compare_digest(call.headers["x-iiot-signature"], expected.hexdigest())
    assert (await _one(owner_engine, "mail_outbox"))["status"] == "sent"
    assert (await _one(owner_engine, "webhook_deliveries"))["status"] == "delivered"
    assert (await deliver_pending(runtime)).handled == 0


async def test_a_claimed_row_is_handed_over_once(
    world: World, runtime: Runtime, owner_engine: AsyncEngine, allow_local_webhooks: None
) -> None:
    async with webhook_server() as hook:
        call_id = await _queue_call(runtime, world.tenant_a.id, hook.url)
        ref = delivery.Ref(world.tenant_a.id, call_id)
        results = await asyncio.gather(
            *(delivery.attempt(runtime, webhooks.WEBHOOKS, ref) for _ in range(4))
        )
        assert len(hook.received) == 1
    assert [r.state for r in results if r is not None] == ["sent"]
    assert (await _one(owner_engine, "webhook_deliveries"))["attempts"] == 1


async def test_what_keeps_failing_is_parked_under_one_policy_and_shown_to_admins(
    world: World, runtime: Runtime, owner_engine: AsyncEngine, allow_local_webhooks: None
) -> None:
    tenant_id = world.tenant_a.id
    original = runtime.settings
    runtime.settings = original.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": free_port()}
    )
    try:
        async with webhook_server(statuses=[503]) as hook:
            async with runtime.db.system() as session:
                await mail.enqueue(
                    session, to="ops@example.com", subject="Lost", body="link", tenant_id=tenant_id
                )
            await _queue_call(runtime, tenant_id, hook.url)
            for attempt in range(1, MAX_ATTEMPTS + 1):
                await _make_due(owner_engine)
                report = await deliver_pending(runtime)
                if attempt < MAX_ATTEMPTS:
                    assert report.retrying == 2, attempt
            assert report.failed == 2
            assert len(hook.received) == MAX_ATTEMPTS
            await _make_due(owner_engine)
            assert (await deliver_pending(runtime)).handled == 0  # parked: never again
    finally:
        runtime.settings = original
    parked_mail = await _one(owner_engine, "mail_outbox")
    parked_call = await _one(owner_engine, "webhook_deliveries")
    assert (parked_mail["status"], parked_mail["attempts"]) == ("failed", MAX_ATTEMPTS)
    assert parked_mail["body"] is None
    assert (parked_call["status"], parked_call["attempts"]) == ("failed", MAX_ATTEMPTS)

    path = f"/api/v1/tenants/{tenant_id}/outbox/parked"
    r = await world.a["admin"].client.get(path)
    assert r.status_code == 200, r.text
    shown = {m["kind"]: m for m in r.json()["messages"]}
    assert shown["mail"]["to"] == "ops@example.com"
    assert shown["mail"]["subject"] == "Lost"
    assert shown["webhook"]["to"] == hook.url
    assert shown["webhook"]["last_error"] == "HTTP 503"
    assert {m["attempts"] for m in shown.values()} == {MAX_ATTEMPTS}
    assert SECRET not in r.text
    assert (await world.a["viewer"].client.get(path)).status_code == 403
    # Another tenant's admin sees nothing of A's, and A's parked rows are not B's.
    assert (await world.b_admin.client.get(path)).status_code == 404
    r = await world.b_admin.client.get(f"/api/v1/tenants/{world.tenant_b.id}/outbox/parked")
    assert r.status_code == 200
    assert r.json() == {"messages": []}
