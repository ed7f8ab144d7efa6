"""A rule as the engine uses it: its stored row parsed once into typed condition and actions."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from pydantic import TypeAdapter, ValidationError

from iiot.models.rules import Rule
from iiot.rules.schemas import (
    CONDITION_MODELS,
    Action,
    ComparisonCondition,
    Condition,
    StatisticalCondition,
    ThresholdCondition,
)

log = logging.getLogger(__name__)

_ACTIONS: TypeAdapter[list[Action]] = TypeAdapter(list[Action])


@dataclass(frozen=True)
class RuleSpec:
    id: uuid.UUID
    name: str
    rule_type: str
    condition: Condition
    device_id: uuid.UUID | None
    device_type: str | None
    enabled: bool
    priority: int
    cooldown_seconds: int
    severity: str
    auto_resolve: bool
    actions: tuple[Action, ...]
    webhook_secret: str | None
    webhook_secrets: dict[str, str]

    def signing_key(self, url: str) -> str | None:
        """The key that signs calls to `url`: the author's own for it, else the generated one."""
        return self.webhook_secrets.get(url) or self.webhook_secret

    @property
    def keys(self) -> frozenset[str]:
        """The telemetry keys whose arrival makes this rule worth evaluating."""
        c = self.condition
        if isinstance(c, ThresholdCondition | StatisticalCondition):
            return frozenset({c.key})
        if isinstance(c, ComparisonCondition):
            return frozenset({c.key1, c.key2})
        return frozenset()

    def applies_to(self, device_id: uuid.UUID, device_type: str | None) -> bool:
        if self.device_id is not None:
            return self.device_id == device_id
        if self.device_type is not None:
            return self.device_type == device_type
        return True


def compile_rule(rule: Rule) -> RuleSpec | None:
    """The spec of a stored rule; None (and a log line) if the stored data no longer parses."""
    try:
        condition = CONDITION_MODELS[rule.rule_type].model_validate(rule.condition)
        actions = _ACTIONS.validate_python(rule.actions)
    except (KeyError, ValidationError):
        log.exception("rule %s has an invalid stored definition; skipped", rule.id)
        return None
    return RuleSpec(
        id=rule.id,
        name=rule.name,
        rule_type=rule.rule_type,
        condition=condition,  # type: ignore[arg-type]
        device_id=rule.device_id,
        device_type=rule.device_type,
        enabled=rule.enabled,
        priority=rule.priority,
        cooldown_seconds=rule.cooldown_seconds,
        severity=rule.severity,
        auto_resolve=rule.auto_resolve,
        actions=tuple(actions),
        webhook_secret=rule.webhook_secret,
        webhook_secrets=dict(rule.webhook_secrets or {}),
    )
