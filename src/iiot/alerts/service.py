"""Alert lifecycle: new → acknowledged → investigating → resolved (new and acknowledged may
go straight to resolved; resolved is final). Every change is kept in the alert's history."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from iiot.alerts.repository import AlertFilter, AlertRepository
from iiot.alerts.schemas import (
    AlertDetail,
    AlertGroup,
    AlertHistoryOut,
    AlertList,
    AlertOut,
)
from iiot.alerts.sla import sla_status
from iiot.audit.service import record
from iiot.db.session import TenantSession
from iiot.errors import Conflict, NotFound
from iiot.models.alerts import Alert, AlertHistory
from iiot.modules import UsageFigures, UsageParameters
from iiot.outputs import from_row
from iiot.tenancy.context import TenantContext
from iiot.tenancy.principals import principal_actor_id

A = TypeVar("A", bound=AlertOut)

# Repeated alerts of one rule, device and severity this close together form one group.
GROUP_WINDOW = timedelta(hours=1)

# action -> (states it may start from, state it leads to, timestamp column it sets)
TRANSITIONS: dict[str, tuple[frozenset[str], str, str]] = {
    "acknowledge": (frozenset({"new"}), "acknowledged", "acknowledged_at"),
    "investigate": (frozenset({"acknowledged"}), "investigating", "investigating_at"),
    "resolve": (frozenset({"new", "acknowledged", "investigating"}), "resolved", "resolved_at"),
}


def _alert_out(model: type[A], alert: Alert, now: datetime, **values: Any) -> A:
    """The alert as `model`: its row, its group and its SLA figures at `now`."""
    sla = sla_status(
        alert.severity, alert.created_at, alert.acknowledged_at, alert.resolved_at, now
    )
    return from_row(model, alert, group_id=alert.group_id or alert.id, **asdict(sla), **values)


async def list_alerts(
    session: TenantSession, ctx: TenantContext, f: AlertFilter, *, limit: int, offset: int
) -> AlertList:
    rows, total = await AlertRepository(session, ctx).page(f, limit=limit, offset=offset)
    now = datetime.now(UTC)
    return AlertList(
        alerts=[_alert_out(AlertOut, a, now) for a in rows], total=total, limit=limit, offset=offset
    )


async def _detail(repo: AlertRepository, alert: Alert) -> AlertDetail:
    history = await repo.history(alert.id)
    group_id = alert.group_id or alert.id
    group = await repo.group(group_id)
    return _alert_out(
        AlertDetail,
        alert,
        datetime.now(UTC),
        group=AlertGroup(
            id=group_id,
            alert_count=group.alerts,
            occurrence_count=group.occurrences,
            first_occurred_at=group.first_occurred_at,
            last_occurred_at=group.last_occurred_at,
        ),
        history=[AlertHistoryOut.model_validate(h) for h in history],
    )


async def get_alert(session: TenantSession, ctx: TenantContext, alert_id: uuid.UUID) -> AlertDetail:
    repo = AlertRepository(session, ctx)
    alert = await repo.get(alert_id)
    if alert is None:
        raise NotFound("alert not found")
    return await _detail(repo, alert)


async def _move(
    repo: AlertRepository, ctx: TenantContext, alert: Alert, to_state: str, notes: str | None
) -> str:
    column = {"acknowledged": "acknowledged_at", "investigating": "investigating_at"}.get(
        to_state, "resolved_at"
    )
    now = datetime.now(UTC)
    before = alert.state
    alert.state = to_state
    setattr(alert, column, now)
    await repo.add_history(
        AlertHistory(
            alert_id=alert.id,
            from_state=before,
            to_state=to_state,
            actor_type=ctx.principal.kind,
            actor_id=principal_actor_id(ctx.principal),
            notes=notes,
            created_at=now,
        )
    )
    return before


async def transition(
    session: TenantSession, ctx: TenantContext, alert_id: uuid.UUID, action: str, notes: str | None
) -> AlertDetail:
    allowed_from, to_state, _ = TRANSITIONS[action]
    repo = AlertRepository(session, ctx)
    alert = await repo.get(alert_id, for_update=True)
    if alert is None:
        raise NotFound("alert not found")
    if alert.state not in allowed_from:
        raise Conflict(
            f"cannot {action} an alert in state {alert.state}",
            state=alert.state,
            allowed_from=sorted(allowed_from),
        )
    before = await _move(repo, ctx, alert, to_state, notes)
    await repo.notify(alert.id, state=to_state, event=action, severity=alert.severity)
    await record(
        session,
        ctx,
        f"alert.{to_state}",
        target_type="alert",
        target_id=alert.id,
        before={"state": before},
        after={"state": to_state, "notes": notes},
    )
    return await _detail(repo, alert)


async def raise_alert(
    session: TenantSession,
    ctx: TenantContext,
    *,
    rule_id: uuid.UUID,
    rule_name: str,
    device_id: uuid.UUID,
    device_name: str | None,
    severity: str,
    message: str,
    key: str | None,
    value: float | None,
    threshold: float | None,
    now: datetime,
    group_window: timedelta = GROUP_WINDOW,
) -> uuid.UUID:
    """Open an alert for (rule, device), or count one more occurrence of the open one. A new
    alert joins the group of the same rule, device and severity if one occurred within
    `group_window` before `now`."""
    repo = AlertRepository(session, ctx)
    alert_id, created = await repo.open_or_bump(
        rule_id=rule_id,
        device_id=device_id,
        rule_name=rule_name,
        device_name=device_name,
        severity=severity,
        message=message,
        key=key,
        value=value,
        threshold=threshold,
        now=now,
        group_window=group_window,
    )
    if created:
        await repo.add_history(
            AlertHistory(
                alert_id=alert_id,
                from_state=None,
                to_state="new",
                actor_type=ctx.principal.kind,
                actor_id=principal_actor_id(ctx.principal),
                notes=message[:2000],
                created_at=now,
            )
        )
    await repo.notify(
        alert_id,
        state="new" if created else None,
        event="opened" if created else "occurred",
        severity=severity,
    )
    return alert_id


async def record_escalation(
    session: TenantSession, ctx: TenantContext, alert_id: uuid.UUID, notes: str, now: datetime
) -> None:
    """Note in the alert's history that an escalation tier fired (its state is unchanged)."""
    await AlertRepository(session, ctx).add_history(
        AlertHistory(
            alert_id=alert_id,
            event="escalation",
            from_state="new",
            to_state="new",
            actor_type=ctx.principal.kind,
            actor_id=principal_actor_id(ctx.principal),
            notes=notes[:2000],
            created_at=now,
        )
    )


async def resolve_cleared(
    session: TenantSession, ctx: TenantContext, rule_id: uuid.UUID, device_id: uuid.UUID
) -> uuid.UUID | None:
    """Resolve the open alert of (rule, device) because its condition cleared (auto_resolve)."""
    repo = AlertRepository(session, ctx)
    alert = await repo.open_for(rule_id, device_id)
    if alert is None:
        return None
    await _move(repo, ctx, alert, "resolved", "condition cleared")
    await repo.notify(alert.id, state="resolved", event="resolve", severity=alert.severity)
    return alert.id


def alert_usage(p: UsageParameters) -> UsageFigures:
    return {
        "alerts_24h": AlertRepository.count_figure(p.tenant_id, since=p.now - timedelta(hours=24)),
        "active_alerts": AlertRepository.count_figure(p.tenant_id, open_only=True),
    }
