"""Rules: CRUD for developers, read for every member, and a dry run against current data.

Every change notifies the rule caches of all processes in the same transaction (NOTIFY is
delivered on commit) and records an audit event.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from iiot.audit.service import changes, record
from iiot.db.session import TenantSession
from iiot.errors import NotFound, ValidationFailed
from iiot.identity.tokens import new_secret
from iiot.models.rules import Rule
from iiot.modules import UsageFigures, UsageParameters
from iiot.notifications.destinations import check_destination
from iiot.outputs import from_row
from iiot.rules.evaluation import in_cooldown, judge
from iiot.rules.repository import (
    ReadingRepository,
    RuleBatchRepository,
    RuleDeviceRepository,
    RuleRepository,
    RuleStateRepository,
)
from iiot.rules.schemas import (
    ParkedBatchList,
    ParkedBatchOut,
    RuleIn,
    RuleList,
    RuleOut,
    RuleSaved,
    RuleTestReport,
    RuleTestResult,
    WebhookAction,
)
from iiot.rules.specs import compile_rule
from iiot.tenancy.context import TenantContext

WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
MAX_TEST_DEVICES = 100
_CONDITION_FIELDS = frozenset({"rule_type", "condition", "device_id", "device_type"})
LastSeen = Callable[[uuid.UUID, datetime | None], datetime | None]


def secret_hint(secret: str) -> str:
    """Enough of a key to tell which one is set, never enough to use it."""
    return "…" + secret[-4:]


def _actions_out(rule: Rule) -> list[dict[str, Any]]:
    own = rule.webhook_secrets or {}
    out = []
    for action in rule.actions:
        if action.get("type") == "webhook" and action.get("url") in own:
            action = {**action, "secret_hint": secret_hint(own[action["url"]])}
        out.append(action)
    return out


def _fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


def to_out(rule: Rule) -> RuleOut:
    return from_row(RuleOut, rule, actions=_actions_out(rule))


def _audited(rule: Rule) -> dict[str, Any]:
    # Own webhook secrets appear as fingerprints only, so that a change of key is visible.
    own = {url: _fingerprint(secret) for url, secret in (rule.webhook_secrets or {}).items()}
    return {"webhook_secret_fingerprints": own} | {
        k: getattr(rule, k)
        for k in (
            "name",
            "description",
            "rule_type",
            "condition",
            "device_id",
            "device_type",
            "enabled",
            "priority",
            "cooldown_seconds",
            "severity",
            "auto_resolve",
            "actions",
        )
    }


async def list_rules(
    session: TenantSession,
    ctx: TenantContext,
    *,
    enabled: bool | None,
    device_id: uuid.UUID | None,
    rule_type: str | None,
    limit: int,
    offset: int,
) -> RuleList:
    rows, total = await RuleRepository(session, ctx).page(
        enabled=enabled, device_id=device_id, rule_type=rule_type, limit=limit, offset=offset
    )
    return RuleList(rules=[to_out(r) for r in rows], total=total)


async def parked_batches(session: TenantSession, ctx: TenantContext, limit: int) -> ParkedBatchList:
    rows = await RuleBatchRepository(session, ctx).parked(limit)
    return ParkedBatchList(
        batches=[
            ParkedBatchOut(
                id=r.id,
                created_at=r.created_at,
                attempts=r.attempts,
                last_error=r.last_error,
                parked_at=r.parked_at,
            )
            for r in rows
        ]
    )


async def get_rule(session: TenantSession, ctx: TenantContext, rule_id: uuid.UUID) -> RuleOut:
    rule = await RuleRepository(session, ctx).get(rule_id)
    if rule is None:
        raise NotFound("rule not found")
    return to_out(rule)


async def _check(
    session: TenantSession, ctx: TenantContext, data: RuleIn, *, allow_private: bool
) -> None:
    if data.device_id is not None and not await RuleDeviceRepository(session, ctx).exists(
        data.device_id
    ):
        raise ValidationFailed(
            "device_id: no such device in this tenant",
            errors=[{"field": "device_id", "message": "no such device"}],
        )
    for action in data.actions:
        if isinstance(action, WebhookAction):
            await check_destination(
                str(action.url), allow_private=allow_private, must_resolve=False
            )


def _fill(rule: Rule, data: RuleIn) -> bool:
    """Copy the request into the row; True when a webhook secret was created."""
    rule.name = data.name
    rule.description = data.description
    rule.rule_type = data.rule_type
    rule.condition = data.condition.model_dump(mode="json", exclude_none=True)
    rule.device_id = data.device_id
    rule.device_type = data.device_type
    rule.enabled = data.enabled
    rule.priority = data.priority
    rule.cooldown_seconds = data.cooldown_seconds
    rule.severity = data.severity
    rule.auto_resolve = data.auto_resolve
    rule.actions = [a.model_dump(mode="json") for a in data.actions]
    # An own key given now replaces the stored one for that URL; a URL given again without
    # one keeps its stored key; keys of URLs no longer used are dropped.
    urls = {str(a.url) for a in data.actions if isinstance(a, WebhookAction)}
    kept = {u: k for u, k in (rule.webhook_secrets or {}).items() if u in urls}
    rule.webhook_secrets = kept | data.webhook_secrets()
    needs_secret = bool(urls - rule.webhook_secrets.keys())
    if needs_secret and not rule.webhook_secret:
        rule.webhook_secret = new_secret(WEBHOOK_SECRET_PREFIX)
        return True
    return False


async def create_rule(
    session: TenantSession, ctx: TenantContext, data: RuleIn, *, allow_private: bool
) -> RuleSaved:
    await _check(session, ctx, data, allow_private=allow_private)
    now = datetime.now(UTC)
    rule = Rule(created_by=ctx.user_id, created_at=now, updated_at=now)
    new_secret_made = _fill(rule, data)
    repo = RuleRepository(session, ctx)
    await repo.add(rule)
    await repo.notify_changed()
    await record(
        session, ctx, "rule.created", target_type="rule", target_id=rule.id, after=_audited(rule)
    )
    return from_row(
        RuleSaved,
        rule,
        actions=_actions_out(rule),
        webhook_secret=rule.webhook_secret if new_secret_made else None,
    )


async def update_rule(
    session: TenantSession,
    ctx: TenantContext,
    rule_id: uuid.UUID,
    data: RuleIn,
    *,
    allow_private: bool,
) -> RuleSaved:
    repo = RuleRepository(session, ctx)
    rule = await repo.get(rule_id, for_update=True)
    if rule is None:
        raise NotFound("rule not found")
    await _check(session, ctx, data, allow_private=allow_private)
    before = _audited(rule)
    new_secret_made = _fill(rule, data)
    rule.updated_at = datetime.now(UTC)
    await session.flush()
    await repo.notify_changed()
    old, new = changes(before, _audited(rule))
    if old.keys() & _CONDITION_FIELDS:
        # A different condition starts from "not holding" on every device.
        await RuleStateRepository(session, ctx).reset(rule.id)
    await record(
        session, ctx, "rule.updated", target_type="rule", target_id=rule.id, before=old, after=new
    )
    return from_row(
        RuleSaved,
        rule,
        actions=_actions_out(rule),
        webhook_secret=rule.webhook_secret if new_secret_made else None,
    )


async def delete_rule(session: TenantSession, ctx: TenantContext, rule_id: uuid.UUID) -> None:
    repo = RuleRepository(session, ctx)
    rule = await repo.get(rule_id, for_update=True)
    if rule is None:
        raise NotFound("rule not found")
    before = _audited(rule)
    await repo.delete(rule)
    await repo.notify_changed()
    await record(session, ctx, "rule.deleted", target_type="rule", target_id=rule_id, before=before)


async def test_rule(
    session: TenantSession, ctx: TenantContext, rule_id: uuid.UUID, last_seen: LastSeen
) -> RuleTestReport:
    """Judge the rule against current data for each device it targets; no state, no action."""
    rule = await RuleRepository(session, ctx).get(rule_id)
    if rule is None:
        raise NotFound("rule not found")
    spec = compile_rule(rule)
    if spec is None:
        raise ValidationFailed("the stored rule no longer validates; update it")
    now = datetime.now(UTC)
    devices = await RuleDeviceRepository(session, ctx).targets(
        device_id=spec.device_id, device_type=spec.device_type, limit=MAX_TEST_DEVICES
    )
    states = await RuleStateRepository(session, ctx).for_rule(rule_id)
    readings = ReadingRepository(session, ctx)
    results = []
    for device in devices:
        verdicts = await judge(
            readings, spec, device, None, now, last_seen=last_seen(device.id, device.last_seen_at)
        )
        v = verdicts[-1] if verdicts else None
        state = states.get(device.id)
        cooling = in_cooldown(spec, state.last_triggered_at if state else None, now)
        results.append(
            RuleTestResult(
                device_id=device.id,
                device_name=device.name,
                matched=v.matched if v else None,
                key=v.key if v else None,
                value=v.value if v else None,
                threshold=v.threshold if v else None,
                would_fire=bool(v and v.matched and spec.enabled and not cooling),
            )
        )
    return RuleTestReport(rule_id=rule_id, evaluated_at=now, results=results)


def rule_usage(p: UsageParameters) -> UsageFigures:
    return {"rule_count": RuleRepository.count_figure(p.tenant_id)}
