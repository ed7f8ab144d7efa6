"""The engine across restarts and processes, tenant isolation, and notifications."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from iiot.app import MODULES, create_app
from iiot.config import Settings
from iiot.events import CommittedPoint, TelemetryCommitted
from iiot.notifications.webhooks import deliver_pending
from iiot.rules.engine import engine, shutdown
from iiot.runtime import Runtime
from tests.fixtures.database import TestDatabase
from tests.fixtures.factories import Actor, Factory, World
from tests.mail.smtp_server import Inbox
from tests.rules.helpers import alerts, make_device, make_rule, send, settle, webhook_server


@pytest.fixture
async def second_process(
    db_urls: TestDatabase, settings: Settings
) -> AsyncIterator[tuple[Runtime, Factory]]:
    """Another app instance on the same database: its own runtime, engine and rule cache."""
    rt = Runtime.build(settings, db_urls.app_url, MODULES)
    factory = Factory(rt=rt, app=create_app(runtime=rt))
    try:
        yield rt, factory
    finally:
        await engine(rt).close()
        await factory.aclose()
        await rt.db.dispose()


def _as(factory: Factory, actor: Actor) -> Actor:
    """The same user, calling the other process."""
    return Actor(
        actor.user_id,
        actor.email,
        actor.tenant_id,
        actor.role,
        actor.token,
        factory.client(actor.headers),
    )


async def test_restart_neither_repeats_nor_loses_a_trigger(
    world: World, runtime: Runtime, second_process: tuple[Runtime, Factory]
) -> None:
    dev = await make_device(world.a["developer"])
    await make_rule(world.a["developer"])
    await send(runtime, world.a["operator"].client, dev["id"], {"temperature": 90})

    rt2, factory2 = second_process
    op2 = _as(factory2, world.a["operator"]).client
    await send(rt2, op2, dev["id"], {"temperature": 95})  # still true after the "restart"
    [alert] = await alerts(world.a["viewer"])
    assert alert["occurrence_count"] == 1
    await send(rt2, op2, dev["id"], {"temperature": 10})
    await send(rt2, op2, dev["id"], {"temperature": 99})  # a new edge is not lost
    [alert] = await alerts(world.a["viewer"])
    assert alert["occurrence_count"] == 2


async def test_rule_edit_is_in_effect_for_the_next_batch_in_every_process(
    world: World, runtime: Runtime, second_process: tuple[Runtime, Factory]
) -> None:
    dev = await make_device(world.a["developer"])
    rule = await make_rule(world.a["developer"])
    rt2, factory2 = second_process
    op2 = _as(factory2, world.a["operator"]).client
    # Both processes have the rule cached.
    await send(runtime, world.a["operator"].client, dev["id"], {"temperature": 50})
    await send(rt2, op2, dev["id"], {"temperature": 50})
    assert await alerts(world.a["viewer"]) == []

    body = {
        "name": "Warm",
        "rule_type": "threshold",
        "condition": {"key": "temperature", "operator": ">", "value": 40},
        "actions": [{"type": "alert"}],
    }
    r = await world.a["developer"].client.put(f"/api/v1/rules/{rule['id']}", json=body)
    assert r.status_code == 200
    await send(rt2, op2, dev["id"], {"temperature": 55})  # the other process, at once
    [alert] = await alerts(world.a["viewer"])
    assert alert["rule_name"] == "Warm"

    r = await world.a["developer"].client.delete(f"/api/v1/rules/{rule['id']}")
    assert r.status_code == 204
    await send(rt2, op2, dev["id"], {"temperature": 10})
    await send(rt2, op2, dev["id"], {"temperature": 60})
    assert len(await alerts(world.a["viewer"])) == 1


async def test_a_rule_never_fires_on_another_tenants_telemetry(
    world: World, runtime: Runtime, owner_engine: AsyncEngine
) -> None:
    ours = await make_device(world.a["developer"], name="Acme pump")
    theirs = await make_device(world.b_admin, name="Beta pump")
    # Tenant-wide rule in B; a rule in A naming B's device cannot even be created.
    await make_rule(world.b_admin, name="Beta rule")
    await send(runtime, world.a["operator"].client, ours["id"], {"temperature": 500})
    assert await alerts(world.b_admin) == []
    await send(runtime, world.b_admin.client, theirs["id"], {"temperature": 500})
    [alert] = await alerts(world.b_admin)
    assert alert["device_name"] == "Beta pump"
    assert await alerts(world.a["viewer"]) == []
    async with owner_engine.connect() as conn:
        tenants = (await conn.execute(text("select distinct tenant_id from rule_states"))).all()
    assert [str(t[0]) for t in tenants] == [str(world.tenant_b.id)]


async def test_webhook_is_signed_and_retried_after_a_failure(
    world: World, runtime: Runtime, owner_engine: AsyncEngine, allow_local_webhooks: None
) -> None:
    dev = await make_device(world.a["developer"])
    async with webhook_server(statuses=[500, 200]) as hook:
        rule = await make_rule(
            world.a["developer"],
            actions=[{"type": "alert"}, {"type": "webhook", "url": hook.url}],
        )
        secret = rule["webhook_secret"]
        await send(runtime, world.a["operator"].client, dev["id"], {"temperature": 90})
        # The first call failed; the alert is there regardless.
        assert len(hook.received) == 1
        [alert] = await alerts(world.a["viewer"])
        async with owner_engine.connect() as conn:
            row = (await conn.execute(text("select * from webhook_deliveries"))).mappings().one()
        assert row["status"] == "pending"
        assert row["attempts"] == 1
        assert row["last_error"] == "HTTP 500"
        assert row["next_attempt_at"] > row["created_at"]

        # Not due yet: the job leaves it alone; once due, it is sent again.
        assert (await deliver_pending(runtime)).sent == 0
        async with owner_engine.begin() as conn:
            await conn.execute(text("update webhook_deliveries set next_attempt_at = now()"))
        report = await deliver_pending(runtime)
        assert report.sent == 1
        assert len(hook.received) == 2

    for call in hook.received:
        assert call.method == "POST"
        assert call.path == "/hook"
        ts = call.headers["x-iiot-timestamp"]
        expected = hmac.new(
            secret.encode(), f"{ts}.{call.body.decode()}".encode(), hashlib.sha256
        ).hexdigest()
        assert hmac.compare_digest(call.headers["x-iiot-signature"], expected)
    payload = json.loads(hook.received[-1].body)
    assert payload["event"] == "rule.triggered"
    assert payload["alert_id"] == alert["id"]
    assert payload["device"]["name"] == "Pump 1"
    assert payload["value"] == 90
    async with owner_engine.connect() as conn:
        status = await conn.scalar(text("select status from webhook_deliveries"))
    assert status == "delivered"


async def test_an_unreachable_webhook_blocks_nothing(
    world: World, runtime: Runtime, allow_local_webhooks: None
) -> None:
    dev = await make_device(world.a["developer"])
    async with webhook_server() as hook:
        dead_url = hook.url
    await make_rule(
        world.a["developer"],
        actions=[{"type": "webhook", "url": dead_url}, {"type": "alert"}],
    )
    await send(runtime, world.a["operator"].client, dev["id"], {"temperature": 90})
    assert len(await alerts(world.a["viewer"])) == 1


async def test_private_destination_is_refused_at_delivery_too(
    world: World, runtime: Runtime, owner_engine: AsyncEngine, allow_local_webhooks: None
) -> None:
    dev = await make_device(world.a["developer"])
    async with webhook_server() as hook:
        await make_rule(world.a["developer"], actions=[{"type": "webhook", "url": hook.url}])
        original = runtime.settings
        runtime.settings = original.model_copy(update={"webhook_allow_private": False})
        try:
            await send(runtime, world.a["operator"].client, dev["id"], {"temperature": 90})
        finally:
            runtime.settings = original
        assert hook.received == []
    async with owner_engine.connect() as conn:
        error = await conn.scalar(text("select last_error from webhook_deliveries"))
    assert "private" in error


async def test_email_action_reaches_the_smtp_server(
    world: World, runtime: Runtime, smtp_inbox: Inbox
) -> None:
    dev = await make_device(world.a["developer"])
    await make_rule(
        world.a["developer"],
        severity="critical",
        actions=[
            {"type": "alert", "message": "{rule_name}: {key} at {value}"},
            {"type": "email", "recipients": ["oncall@example.com", "lead@example.com"]},
        ],
    )
    await send(runtime, world.a["operator"].client, dev["id"], {"temperature": 91.5})
    messages = await smtp_inbox.wait_for(2)
    to_oncall = smtp_inbox.to("oncall@example.com")
    assert len(messages) == 2
    assert to_oncall[0]["Subject"] == "[critical] Too hot"
    assert "Too hot: temperature at 91.5" in to_oncall[0].get_content()
    await settle(runtime)


async def test_engine_figures_are_exported(world: World, runtime: Runtime) -> None:
    dev = await make_device(world.a["developer"])
    await make_rule(world.a["developer"])
    await send(runtime, world.a["operator"].client, dev["id"], {"temperature": 90})
    text_ = (await world.anonymous.get("/metrics")).text
    triggers = [
        float(line.split()[-1])
        for line in text_.splitlines()
        if line.startswith("iiot_rules_triggers_total ")
    ]
    assert triggers
    assert triggers[0] >= 1
    assert "iiot_rules_queue_depth 0.0" in text_


async def test_shutdown_evaluates_what_is_queued(
    world: World, db_urls: TestDatabase, settings: Settings
) -> None:
    dev = await make_device(world.a["developer"])
    await make_rule(world.a["developer"])
    rt = Runtime.build(settings, db_urls.app_url, MODULES)
    factory = Factory(rt=rt, app=create_app(runtime=rt))
    try:
        op = _as(factory, world.a["operator"]).client
        r = await op.post(
            "/api/v1/telemetry", json={"device_id": dev["id"], "telemetry": {"temperature": 99}}
        )
        assert r.status_code == 201
        await shutdown(rt)
    finally:
        await factory.aclose()
        await rt.db.dispose()
    assert len(await alerts(world.a["viewer"])) == 1


async def test_a_device_gone_before_evaluation_is_skipped(world: World, runtime: Runtime) -> None:
    dev = await make_device(world.a["developer"])
    await make_rule(world.a["developer"])
    now = datetime.now(UTC)
    gone = uuid.uuid4()
    outcome = await engine(runtime).evaluate(
        world.tenant_a.id,
        [
            TelemetryCommitted(
                world.tenant_a.id,
                [
                    CommittedPoint(gone, "temperature", now, 99.0),
                    CommittedPoint(uuid.UUID(dev["id"]), "temperature", now, 99.0),
                ],
            )
        ],
    )
    assert outcome.fired == 1
    [alert] = await alerts(world.a["viewer"])
    assert alert["device_name"] == "Pump 1"
