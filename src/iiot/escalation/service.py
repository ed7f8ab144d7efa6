"""Escalation policies and on-call schedules: CRUD (audited), who is on call, and escalating
the unacknowledged alerts whose next tier is due.

A policy escalates every alert of a severity it lists while the alert is `new`
(unacknowledged). Tier 1 is due `delay_minutes` after the alert was raised, each later tier
`delay_minutes` after the previous one fired. Firing a tier records it (one row per alert,
policy and tier, under the primary key), queues its e-mails and webhook calls and notes it in
the alert's history, all in one transaction: a tier fires exactly once, and a restart picks up
where the last committed run stopped. Acknowledging (or resolving) the alert stops it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from iiot import mail
from iiot.alerts import service as alerts
from iiot.audit.service import changes, record
from iiot.db.session import TenantSession
from iiot.errors import Conflict, NotFound, ValidationFailed
from iiot.escalation.oncall import OverridePeriod, Shift, on_call
from iiot.escalation.repository import (
    EscalationRepository,
    OverrideRepository,
    PolicyRepository,
    ScheduleRepository,
)
from iiot.escalation.schemas import (
    OnCallOut,
    OverrideIn,
    OverrideOut,
    PolicyIn,
    PolicyList,
    PolicyOut,
    PolicySaved,
    ScheduleIn,
    ScheduleList,
    ScheduleOut,
    recipient_kind,
    schedule_id_of,
)
from iiot.identity.tokens import new_secret
from iiot.models.alerts import Alert
from iiot.models.escalation import EscalationPolicy, OnCallOverride, OnCallSchedule
from iiot.notifications import webhooks
from iiot.notifications.destinations import check_destination
from iiot.outputs import from_row
from iiot.tenancy.context import TenantContext

WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
DUE_BATCH = 500
# Tiers with no delay after the previous one fire in the same run, up to this many rounds.
MAX_ROUNDS = 10


# --- policies ---------------------------------------------------------------------------------


def _policy_audited(p: EscalationPolicy) -> dict[str, Any]:
    return {
        "name": p.name,
        "description": p.description,
        "severities": list(p.severities),
        "enabled": p.enabled,
        "tiers": p.tiers,
    }


async def _check_policy(
    session: TenantSession, ctx: TenantContext, data: PolicyIn, *, allow_private: bool
) -> None:
    recipients = [r for tier in data.tiers for r in tier.recipients]
    wanted = {schedule_id_of(r) for r in recipients if recipient_kind(r) == "schedule"}
    missing = wanted - await ScheduleRepository(session, ctx).existing(wanted)
    if missing:
        raise ValidationFailed(
            "tiers: no such on-call schedule in this tenant: "
            + ", ".join(sorted(str(m) for m in missing)),
            errors=[{"field": "tiers", "message": "unknown schedule"}],
        )
    for r in recipients:
        if recipient_kind(r) == "webhook":
            await check_destination(r, allow_private=allow_private, must_resolve=False)


async def _name_free(repo: PolicyRepository, name: str, other_than: uuid.UUID | None) -> None:
    if await repo.name_taken(name, other_than):
        raise Conflict(f"an escalation policy named {name!r} exists already")


def _fill_policy(p: EscalationPolicy, data: PolicyIn) -> bool:
    """Copy the request into the row; True when a webhook secret was created."""
    p.name = data.name
    p.description = data.description
    p.severities = list(data.severities)
    p.enabled = data.enabled
    p.tiers = [t.model_dump(mode="json") for t in data.tiers]
    if any("webhook" in t.channels for t in data.tiers) and not p.webhook_secret:
        p.webhook_secret = new_secret(WEBHOOK_SECRET_PREFIX)
        return True
    return False


async def list_policies(
    session: TenantSession, ctx: TenantContext, *, limit: int, offset: int
) -> PolicyList:
    rows, total = await PolicyRepository(session, ctx).page(limit, offset)
    return PolicyList(policies=[PolicyOut.model_validate(p) for p in rows], total=total)


async def get_policy(session: TenantSession, ctx: TenantContext, policy_id: uuid.UUID) -> PolicyOut:
    p = await PolicyRepository(session, ctx).get(policy_id)
    if p is None:
        raise NotFound("escalation policy not found")
    return PolicyOut.model_validate(p)


async def create_policy(
    session: TenantSession, ctx: TenantContext, data: PolicyIn, *, allow_private: bool
) -> PolicySaved:
    repo = PolicyRepository(session, ctx)
    await _name_free(repo, data.name, None)
    await _check_policy(session, ctx, data, allow_private=allow_private)
    now = datetime.now(UTC)
    p = EscalationPolicy(created_by=ctx.user_id, created_at=now, updated_at=now)
    made_secret = _fill_policy(p, data)
    await repo.add(p)
    await record(
        session,
        ctx,
        "escalation_policy.created",
        target_type="escalation_policy",
        target_id=p.id,
        after=_policy_audited(p),
    )
    return from_row(PolicySaved, p, webhook_secret=p.webhook_secret if made_secret else None)


async def update_policy(
    session: TenantSession,
    ctx: TenantContext,
    policy_id: uuid.UUID,
    data: PolicyIn,
    *,
    allow_private: bool,
) -> PolicySaved:
    repo = PolicyRepository(session, ctx)
    p = await repo.get(policy_id, for_update=True)
    if p is None:
        raise NotFound("escalation policy not found")
    await _name_free(repo, data.name, p.id)
    await _check_policy(session, ctx, data, allow_private=allow_private)
    before = _policy_audited(p)
    made_secret = _fill_policy(p, data)
    p.updated_at = datetime.now(UTC)
    await session.flush()
    old, new = changes(before, _policy_audited(p))
    await record(
        session,
        ctx,
        "escalation_policy.updated",
        target_type="escalation_policy",
        target_id=p.id,
        before=old,
        after=new,
    )
    return from_row(PolicySaved, p, webhook_secret=p.webhook_secret if made_secret else None)


async def delete_policy(session: TenantSession, ctx: TenantContext, policy_id: uuid.UUID) -> None:
    repo = PolicyRepository(session, ctx)
    p = await repo.get(policy_id, for_update=True)
    if p is None:
        raise NotFound("escalation policy not found")
    before = _policy_audited(p)
    await repo.delete(p)
    await record(
        session,
        ctx,
        "escalation_policy.deleted",
        target_type="escalation_policy",
        target_id=policy_id,
        before=before,
    )


# --- on-call schedules ------------------------------------------------------------------------


async def _schedule_out(
    session: TenantSession, ctx: TenantContext, s: OnCallSchedule, now: datetime
) -> ScheduleOut:
    overrides = await OverrideRepository(session, ctx).not_ended(s.id, now)
    return from_row(ScheduleOut, s, overrides=[OverrideOut.model_validate(o) for o in overrides])


def _schedule_audited(s: OnCallSchedule) -> dict[str, Any]:
    return {
        "name": s.name,
        "time_zone": s.time_zone,
        "rotation_start": s.rotation_start.isoformat(),
        "participants": s.participants,
    }


def _fill_schedule(s: OnCallSchedule, data: ScheduleIn) -> None:
    s.name = data.name
    s.time_zone = data.time_zone
    s.rotation_start = data.rotation_start
    s.participants = [p.model_dump(mode="json") for p in data.participants]


async def _schedule_or_404(
    repo: ScheduleRepository, schedule_id: uuid.UUID, *, for_update: bool = False
) -> OnCallSchedule:
    s = await repo.get(schedule_id, for_update=for_update)
    if s is None:
        raise NotFound("on-call schedule not found")
    return s


async def list_schedules(
    session: TenantSession, ctx: TenantContext, *, limit: int, offset: int
) -> ScheduleList:
    rows, total = await ScheduleRepository(session, ctx).page(limit, offset)
    now = datetime.now(UTC)
    return ScheduleList(
        schedules=[await _schedule_out(session, ctx, s, now) for s in rows], total=total
    )


async def get_schedule(
    session: TenantSession, ctx: TenantContext, schedule_id: uuid.UUID
) -> ScheduleOut:
    s = await _schedule_or_404(ScheduleRepository(session, ctx), schedule_id)
    return await _schedule_out(session, ctx, s, datetime.now(UTC))


async def create_schedule(
    session: TenantSession, ctx: TenantContext, data: ScheduleIn
) -> ScheduleOut:
    repo = ScheduleRepository(session, ctx)
    if await repo.name_taken(data.name):
        raise Conflict(f"an on-call schedule named {data.name!r} exists already")
    now = datetime.now(UTC)
    s = OnCallSchedule(created_by=ctx.user_id, created_at=now, updated_at=now)
    _fill_schedule(s, data)
    await repo.add(s)
    await record(
        session,
        ctx,
        "oncall_schedule.created",
        target_type="oncall_schedule",
        target_id=s.id,
        after=_schedule_audited(s),
    )
    return await _schedule_out(session, ctx, s, now)


async def update_schedule(
    session: TenantSession, ctx: TenantContext, schedule_id: uuid.UUID, data: ScheduleIn
) -> ScheduleOut:
    repo = ScheduleRepository(session, ctx)
    s = await _schedule_or_404(repo, schedule_id, for_update=True)
    if await repo.name_taken(data.name, s.id):
        raise Conflict(f"an on-call schedule named {data.name!r} exists already")
    before = _schedule_audited(s)
    _fill_schedule(s, data)
    s.updated_at = datetime.now(UTC)
    await session.flush()
    old, new = changes(before, _schedule_audited(s))
    await record(
        session,
        ctx,
        "oncall_schedule.updated",
        target_type="oncall_schedule",
        target_id=s.id,
        before=old,
        after=new,
    )
    return await _schedule_out(session, ctx, s, s.updated_at)


async def delete_schedule(
    session: TenantSession, ctx: TenantContext, schedule_id: uuid.UUID
) -> None:
    repo = ScheduleRepository(session, ctx)
    s = await _schedule_or_404(repo, schedule_id, for_update=True)
    users = await PolicyRepository(session, ctx).using_schedule(s.id)
    if users:
        raise Conflict(
            "the schedule is a recipient of escalation policies: " + ", ".join(sorted(users)),
            policies=sorted(users),
        )
    before = _schedule_audited(s)
    await repo.delete(s)
    await record(
        session,
        ctx,
        "oncall_schedule.deleted",
        target_type="oncall_schedule",
        target_id=schedule_id,
        before=before,
    )


async def add_override(
    session: TenantSession, ctx: TenantContext, schedule_id: uuid.UUID, data: OverrideIn
) -> OverrideOut:
    await _schedule_or_404(ScheduleRepository(session, ctx), schedule_id, for_update=True)
    o = OnCallOverride(
        schedule_id=schedule_id,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        email=data.email,
        name=data.name,
        created_at=datetime.now(UTC),
        created_by=ctx.user_id,
    )
    await OverrideRepository(session, ctx).add(o)
    await record(
        session,
        ctx,
        "oncall_schedule.override_added",
        target_type="oncall_schedule",
        target_id=schedule_id,
        after=OverrideOut.model_validate(o).model_dump(mode="json"),
    )
    return OverrideOut.model_validate(o)


async def delete_override(
    session: TenantSession, ctx: TenantContext, schedule_id: uuid.UUID, override_id: uuid.UUID
) -> None:
    await _schedule_or_404(ScheduleRepository(session, ctx), schedule_id, for_update=True)
    repo = OverrideRepository(session, ctx)
    o = await repo.get(schedule_id, override_id)
    if o is None:
        raise NotFound("override not found")
    before = OverrideOut.model_validate(o).model_dump(mode="json")
    await repo.delete(o)
    await record(
        session,
        ctx,
        "oncall_schedule.override_deleted",
        target_type="oncall_schedule",
        target_id=schedule_id,
        before=before,
    )


async def _shift(
    session: TenantSession, ctx: TenantContext, s: OnCallSchedule, at: datetime
) -> Shift:
    covering = await OverrideRepository(session, ctx).covering(s.id, at)
    periods = [
        OverridePeriod(o.id, o.starts_at, o.ends_at, o.email, o.name, o.created_at)
        for o in covering
    ]
    return on_call(s.participants, s.time_zone, s.rotation_start, periods, at)


async def who_is_on_call(
    session: TenantSession, ctx: TenantContext, schedule_id: uuid.UUID, at: datetime | None
) -> OnCallOut:
    s = await _schedule_or_404(ScheduleRepository(session, ctx), schedule_id)
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    shift = await _shift(session, ctx, s, moment)
    return OnCallOut(
        schedule_id=s.id,
        at=moment,
        email=shift.email,
        name=shift.name,
        source=shift.source,
        override_id=shift.override_id,
        since=shift.since,
        until=shift.until,
    )


# --- escalating -------------------------------------------------------------------------------


@dataclass
class EscalationOutcome:
    fired: int = 0
    mails: int = 0
    webhooks: list[uuid.UUID] = field(default_factory=list)


async def _fire(
    session: TenantSession,
    ctx: TenantContext,
    alert: Alert,
    policy: EscalationPolicy,
    tier_index: int,
    now: datetime,
    outcome: EscalationOutcome,
) -> bool:
    tier = policy.tiers[tier_index]
    channels = set(tier["channels"])
    emails: list[str] = []
    urls: list[str] = []
    on_call_notes: list[str] = []
    schedules = ScheduleRepository(session, ctx)
    for r in tier["recipients"]:
        kind = recipient_kind(r)
        if kind == "webhook":
            urls.append(r)
        elif kind == "email":
            emails.append(r)
        else:
            schedule = await schedules.get(schedule_id_of(r))
            if schedule is None:
                on_call_notes.append(f"{r}: schedule no longer exists")
                continue
            shift = await _shift(session, ctx, schedule, now)
            emails.append(shift.email)
            on_call_notes.append(f"on call for {schedule.name}: {shift.email}")
    emails = list(dict.fromkeys(emails)) if "email" in channels else []
    urls = urls if "webhook" in channels else []
    claimed = await EscalationRepository(session, ctx).claim(
        alert.id, policy.id, tier_index, now, emails + urls
    )
    if not claimed:
        return False
    number = tier_index + 1
    subject = f"[{alert.severity}] Escalation, tier {number}: {alert.rule_name}"
    body = (
        f"{alert.message}\n\nUnacknowledged since {alert.created_at.isoformat()}.\n"
        f"Device: {alert.device_name or '-'}\nRule: {alert.rule_name}\n"
        f"Escalation policy: {policy.name}, tier {number} of {len(policy.tiers)}\n"
        f"Alert: {alert.id}\n"
    )
    for to in emails:
        await mail.enqueue(session, to=to, subject=subject, body=body, tenant_id=ctx.tenant_id)
        outcome.mails += 1
    if urls and policy.webhook_secret:
        payload = {
            "event": "alert.escalated",
            "tenant_id": str(ctx.tenant_id),
            "alert": {
                "id": str(alert.id),
                "severity": alert.severity,
                "message": alert.message,
                "rule_name": alert.rule_name,
                "device_name": alert.device_name,
                "created_at": alert.created_at.isoformat(),
            },
            "policy": {"id": str(policy.id), "name": policy.name},
            "tier": number,
            "on_call": emails,
            "escalated_at": now.isoformat(),
        }
        for url in urls:
            outcome.webhooks.append(
                await webhooks.enqueue(
                    session,
                    ctx,
                    rule_id=None,
                    url=url,
                    secret=policy.webhook_secret,
                    payload=payload,
                )
            )
    sent = [f"e-mail to {', '.join(emails)}"] if emails else []
    sent += [f"webhook to {', '.join(urls)}"] if urls else []
    notes = f"escalated by policy {policy.name!r}, tier {number}: " + "; ".join(
        sent + on_call_notes
    )
    await alerts.record_escalation(session, ctx, alert.id, notes, now)
    outcome.fired += 1
    return True


async def escalate(session: TenantSession, ctx: TenantContext, now: datetime) -> EscalationOutcome:
    """Fire every tier due at `now` in the context's tenant (in the caller's transaction)."""
    outcome = EscalationOutcome()
    repo = EscalationRepository(session, ctx)
    policies = PolicyRepository(session, ctx)
    for _ in range(MAX_ROUNDS):
        progressed = False
        for due in await repo.due(now, DUE_BATCH):
            alert = await repo.lock_unacknowledged(due.alert_id)
            policy = await policies.get(due.policy_id)
            if alert is None or policy is None or due.tier >= len(policy.tiers):
                continue
            progressed |= await _fire(session, ctx, alert, policy, due.tier, now, outcome)
        if not progressed:
            break
    return outcome
