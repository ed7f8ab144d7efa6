"""Alerts raised at a chosen time, through the alerts service as the rules engine does."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from iiot.alerts import service as alerts
from iiot.runtime import Runtime
from iiot.tenancy.context import system_context
from tests.fixtures.factories import Actor, World
from tests.rules.helpers import make_device, make_rule


async def rule_and_device(
    world: World, name: str = "Boiler"
) -> tuple[dict[str, Any], dict[str, Any]]:
    dev = await make_device(world.a["developer"], name=name)
    rule = await make_rule(world.a["developer"], name=f"{name} too hot", device_id=dev["id"])
    return rule, dev


async def raise_at(
    rt: Runtime,
    world: World,
    rule: dict[str, Any],
    dev: dict[str, Any],
    now: datetime,
    *,
    severity: str = "critical",
    window: timedelta = alerts.GROUP_WINDOW,
) -> uuid.UUID:
    ctx = system_context(world.tenant_a.id)
    async with rt.db.tenant(ctx) as session:
        return await alerts.raise_alert(
            session,
            ctx,
            rule_id=uuid.UUID(rule["id"]),
            rule_name=rule["name"],
            device_id=uuid.UUID(dev["id"]),
            device_name=dev["name"],
            severity=severity,
            message=f"{dev['name']} is too hot",
            key="temperature",
            value=99.0,
            threshold=80.0,
            now=now,
            group_window=window,
        )


async def alert_detail(actor: Actor, alert_id: uuid.UUID) -> dict[str, Any]:
    r = await actor.client.get(f"/api/v1/alerts/{alert_id}")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]
