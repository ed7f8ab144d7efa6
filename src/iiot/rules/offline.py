"""Device-offline rules, evaluated by a periodic job (no telemetry arrives to trigger them)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from iiot.devices.presence import presence
from iiot.rules.engine import ENGINE_ACTOR, after_commit
from iiot.rules.evaluation import Judged, Outcome, apply, judge
from iiot.rules.repository import (
    OfflineRuleTenants,
    ReadingRepository,
    RuleDeviceRepository,
    RuleRepository,
)
from iiot.rules.specs import compile_rule
from iiot.tenancy.context import system_context

if TYPE_CHECKING:
    from iiot.runtime import Runtime

JOB_INTERVAL_SECONDS = 30
MAX_DEVICES_PER_RULE = 10_000


async def evaluate_tenant(rt: Runtime, tenant_id: uuid.UUID) -> Outcome:
    ctx = system_context(tenant_id, ENGINE_ACTOR)
    now = datetime.now(UTC)
    seen = presence(rt)
    async with rt.db.tenant(ctx) as session:
        rows = await RuleRepository(session, ctx).enabled(time_based=True)
        devices = RuleDeviceRepository(session, ctx)
        readings = ReadingRepository(session, ctx)
        judged: list[Judged] = []
        for spec in (s for s in map(compile_rule, rows) if s is not None):
            targets = await devices.targets(
                device_id=spec.device_id, device_type=spec.device_type, limit=MAX_DEVICES_PER_RULE
            )
            for device in targets:
                last = seen.last_seen(device.id, device.last_seen_at)
                verdicts = await judge(readings, spec, device, None, now, last_seen=last)
                judged.append((spec, device, verdicts))
        outcome = await apply(session, ctx, judged, now)
    after_commit(rt, tenant_id, outcome)
    return outcome


async def evaluate_offline_rules(rt: Runtime) -> int:
    """Run every tenant's device-offline rules; returns how many fired."""
    async with rt.db.system() as session:
        tenants = await OfflineRuleTenants(session).tenant_ids()
    fired = 0
    for tenant_id in tenants:
        fired += (await evaluate_tenant(rt, tenant_id)).fired
    return fired
