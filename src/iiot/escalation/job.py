"""The escalation job: every tenant with unacknowledged alerts that a policy still has tiers
for is escalated in its own transaction; what it queued is sent after commit."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from iiot import mail
from iiot.escalation.repository import PendingEscalationTenants
from iiot.escalation.service import escalate
from iiot.notifications import webhooks
from iiot.tenancy.context import system_context

if TYPE_CHECKING:
    from iiot.runtime import Runtime

log = logging.getLogger(__name__)

JOB_NAME = "alerts.escalation"
JOB_INTERVAL_SECONDS = 30


async def escalate_due(rt: Runtime, now: datetime | None = None) -> int:
    """Fire every tier due at `now` (default: the clock); returns how many fired."""
    at = now or datetime.now(UTC)
    async with rt.db.system() as session:
        tenants = await PendingEscalationTenants(session).tenant_ids()
    fired = 0
    for tenant_id in tenants:
        ctx = system_context(tenant_id)
        try:
            async with rt.db.tenant(ctx) as session:
                outcome = await escalate(session, ctx, at)
        except Exception:
            log.exception("escalation of tenant %s failed; retried next run", tenant_id)
            continue
        webhooks.deliver_soon(rt, tenant_id, outcome.webhooks)
        if outcome.mails:
            mail.deliver_soon(rt)
        fired += outcome.fired
    return fired


async def run(rt: Runtime) -> int:
    return await escalate_due(rt)
