"""Escalation of unacknowledged alerts, tier by tier, on a controlled clock."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from iiot.app import MODULES
from iiot.escalation.job import escalate_due
from iiot.notifications.webhooks import wait_for_deliveries
from iiot.runtime import Runtime
from tests.escalation.helpers import alert_detail, raise_at, rule_and_device
from tests.fixtures.database import TestDatabase
from tests.fixtures.factories import World
from tests.rules.helpers import webhook_server

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


async def make_schedule(world: World, **body: Any) -> dict[str, Any]:
    payload = {
        "name": "Plant night shift",
        "time_zone": "UTC",
        "rotation_start": "2020-01-06T00:00:00",
        "participants": [{"email": "only@example.com", "name": "Only One"}],
        **body,
    }
    r = await world.a["developer"].client.post("/api/v1/oncall-schedules", json=payload)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def make_policy(world: World, tiers: list[dict[str, Any]], **body: Any) -> dict[str, Any]:
    payload = {"name": "Critical plant alerts", "severities": ["critical"], "tiers": tiers, **body}
    r = await world.a["developer"].client.post("/api/v1/escalation-policies", json=payload)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def mails(owner_engine: AsyncEngine) -> list[tuple[str, str]]:
    async with owner_engine.connect() as conn:
        rows = await conn.execute(
            text("select to_address, subject from mail_outbox order by created_at, to_address")
        )
        return [(r[0], r[1]) for r in rows]


def escalations(detail: dict[str, Any]) -> list[str]:
    return [h["notes"] for h in detail["history"] if h["event"] == "escalation"]


async def test_tiers_fire_once_each_on_time_and_survive_a_restart(
    world: World,
    runtime: Runtime,
    db_urls: TestDatabase,
    owner_engine: AsyncEngine,
    allow_local_webhooks: None,
) -> None:
    schedule = await make_schedule(world)
    rule, dev = await rule_and_device(world)
    async with webhook_server() as hook:
        policy = await make_policy(
            world,
            [
                {"delay_minutes": 5, "channels": ["email"], "recipients": ["first@example.com"]},
                {
                    "delay_minutes": 10,
                    "channels": ["email", "webhook"],
                    "recipients": [f"schedule:{schedule['id']}", hook.url],
                },
            ],
        )
        secret = policy["webhook_secret"]
        assert secret.startswith("whsec_")
        alert_id = await raise_at(runtime, world, rule, dev, T0)

        assert await escalate_due(runtime, minutes(4.9)) == 0
        assert await escalate_due(runtime, minutes(5)) == 1
        assert await escalate_due(runtime, minutes(5)) == 0  # exactly once
        assert await mails(owner_engine) == [
            ("first@example.com", "[critical] Escalation, tier 1: Boiler too hot")
        ]
        # Tier 2 is due 10 minutes after tier 1 fired, not after the alert was raised.
        assert await escalate_due(runtime, minutes(14.9)) == 0

        # A fresh process (nothing in memory) continues from the persisted progress.
        restarted = Runtime.build(runtime.settings, db_urls.app_url, MODULES)
        try:
            assert await escalate_due(restarted, minutes(15)) == 1
            await wait_for_deliveries(restarted)
        finally:
            await restarted.db.dispose()
        assert await escalate_due(runtime, minutes(16)) == 0
        assert await escalate_due(runtime, minutes(600)) == 0  # no tier left

    assert [m[0] for m in await mails(owner_engine)] == ["first@example.com", "only@example.com"]
    [call] = hook.received
    ts = call.headers["x-iiot-timestamp"]
    expected = hmac.new(
        secret.encode(), f"{ts}.{call.body.decode()}".encode(), hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(call.headers["x-iiot-signature"], expected)
    payload = json.loads(call.body)
    assert payload["event"] == "alert.escalated"
    assert payload["tier"] == 2
    assert payload["alert"]["id"] == str(alert_id)
    assert payload["on_call"] == ["only@example.com"]

    detail = await alert_detail(world.a["viewer"], alert_id)
    notes = escalations(detail)
    assert len(notes) == 2
    assert "tier 1: e-mail to first@example.com" in notes[0]
    assert "on call for Plant night shift: only@example.com" in notes[1]
    assert detail["state"] == "new"
    async with owner_engine.connect() as conn:
        fired = (
            await conn.execute(text("select tier, fired_at from alert_escalations order by tier"))
        ).all()
    assert [(t, at) for t, at in fired] == [(0, minutes(5)), (1, minutes(15))]


async def test_acknowledging_stops_the_escalation(
    world: World, runtime: Runtime, owner_engine: AsyncEngine
) -> None:
    rule, dev = await rule_and_device(world)
    tiers = [
        {"delay_minutes": 1, "channels": ["email"], "recipients": ["one@example.com"]},
        {"delay_minutes": 1, "channels": ["email"], "recipients": ["two@example.com"]},
    ]
    await make_policy(world, tiers)
    alert_id = await raise_at(runtime, world, rule, dev, T0)
    assert await escalate_due(runtime, minutes(1)) == 1
    r = await world.a["operator"].client.post(f"/api/v1/alerts/{alert_id}/acknowledge", json={})
    assert r.status_code == 200, r.text
    assert await escalate_due(runtime, minutes(30)) == 0
    assert [m[0] for m in await mails(owner_engine)] == ["one@example.com"]
    detail = await alert_detail(world.a["viewer"], alert_id)
    assert [(h["event"], h["to_state"]) for h in detail["history"]] == [
        ("state", "new"),
        ("escalation", "new"),
        ("state", "acknowledged"),
    ]


async def test_only_listed_severities_escalate_and_late_runs_catch_up_in_order(
    world: World, runtime: Runtime, owner_engine: AsyncEngine
) -> None:
    rule, dev = await rule_and_device(world)
    tiers = [
        {"delay_minutes": 2, "channels": ["email"], "recipients": ["one@example.com"]},
        {"delay_minutes": 0, "channels": ["email"], "recipients": ["two@example.com"]},
        {"delay_minutes": 5, "channels": ["email"], "recipients": ["three@example.com"]},
    ]
    await make_policy(world, tiers, severities=["critical", "high"])
    other_rule, other_dev = await rule_and_device(world, "Chiller")
    await raise_at(runtime, world, other_rule, other_dev, T0, severity="low")
    alert_id = await raise_at(runtime, world, rule, dev, T0)
    # The job was down for an hour: tier 1 and the no-delay tier 2 fire now, tier 3 waits its
    # five minutes from tier 2.
    assert await escalate_due(runtime, minutes(60)) == 2
    assert await escalate_due(runtime, minutes(64)) == 0
    assert await escalate_due(runtime, minutes(65)) == 1
    assert [m[0] for m in await mails(owner_engine)] == [
        "one@example.com",
        "two@example.com",
        "three@example.com",
    ]
    assert len(escalations(await alert_detail(world.a["viewer"], alert_id))) == 3


async def test_concurrent_runs_fire_a_tier_once(
    world: World, runtime: Runtime, owner_engine: AsyncEngine
) -> None:
    rule, dev = await rule_and_device(world)
    await make_policy(
        world, [{"delay_minutes": 0, "channels": ["email"], "recipients": ["x@example.com"]}]
    )
    await raise_at(runtime, world, rule, dev, T0)
    results = await asyncio.gather(*(escalate_due(runtime, minutes(1)) for _ in range(4)))
    assert sum(results) == 1
    assert len(await mails(owner_engine)) == 1


async def test_policy_validation_conflicts_roles_and_audit(world: World) -> None:
    dev_client = world.a["developer"].client
    schedule = await make_schedule(world)
    good_tier = {"delay_minutes": 5, "channels": ["email"], "recipients": ["a@example.com"]}
    bad = [
        {"tiers": []},
        {"severities": ["urgent"], "tiers": [good_tier]},
        {"tiers": [{**good_tier, "channels": ["webhook"]}]},
        {"tiers": [{**good_tier, "recipients": ["not a recipient"]}]},
        {"tiers": [{**good_tier, "recipients": ["https://example.com/h"]}]},
        {"tiers": [{**good_tier, "delay_minutes": -1}]},
        {"tiers": [{**good_tier, "recipients": ["schedule:00000000-0000-0000-0000-000000000000"]}]},
        {"tiers": [{**good_tier, "recipients": ["http://127.0.0.1:9/x"], "channels": ["webhook"]}]},
    ]
    for body in bad:
        r = await dev_client.post(
            "/api/v1/escalation-policies", json={"name": "p", "severities": ["high"], **body}
        )
        assert r.status_code == 422, (body, r.text)
    r = await world.a["viewer"].client.post(
        "/api/v1/escalation-policies",
        json={"name": "p", "severities": ["high"], "tiers": [good_tier]},
    )
    assert r.status_code == 403
    policy = await make_policy(
        world,
        [{**good_tier, "recipients": [f"schedule:{schedule['id']}"]}],
        severities=["warning"],
    )
    assert policy["severities"] == ["medium"]  # the original's name, stored as ours
    assert policy["webhook_secret"] is None  # no webhook channel
    r = await dev_client.post(
        "/api/v1/escalation-policies",
        json={"name": policy["name"], "severities": ["high"], "tiers": [good_tier]},
    )
    assert r.status_code == 409
    r = await dev_client.delete(f"/api/v1/oncall-schedules/{schedule['id']}")
    assert r.status_code == 409
    assert r.json()["policies"] == [policy["name"]]
    r = await dev_client.put(
        f"/api/v1/escalation-policies/{policy['id']}",
        json={"name": "Renamed", "severities": ["high"], "tiers": [good_tier]},
    )
    assert r.status_code == 200, r.text
    assert (
        await dev_client.delete(f"/api/v1/oncall-schedules/{schedule['id']}")
    ).status_code == 204
    assert (
        await dev_client.delete(f"/api/v1/escalation-policies/{policy['id']}")
    ).status_code == 204
    audit = await world.a["admin"].client.get(
        f"/api/v1/tenants/{world.tenant_a.id}/audit", params={"limit": 100}
    )
    assert audit.status_code == 200, audit.text
    actions = [e["action"] for e in audit.json()["events"]]
    for action in (
        "escalation_policy.created",
        "escalation_policy.updated",
        "escalation_policy.deleted",
        "oncall_schedule.created",
        "oncall_schedule.deleted",
    ):
        assert action in actions, action
