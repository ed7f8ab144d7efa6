"""Wire format of alerts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

AlertState = Literal["new", "acknowledged", "investigating", "resolved"]
# An alert's severity, set by the rule that raises it.
Severity = Literal["critical", "high", "medium", "low", "info"]
# The original platform's severity names that differ from ours.
SEVERITY_ALIASES = {"warning": "medium"}


def _severity_alias(value: Any) -> Any:
    return SEVERITY_ALIASES.get(value, value) if isinstance(value, str) else value


SeverityIn = Annotated[Severity, BeforeValidator(_severity_alias)]


class TransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    notes: str | None = Field(default=None, max_length=2000)


class AlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    rule_id: uuid.UUID | None
    rule_name: str
    device_id: uuid.UUID | None
    device_name: str | None
    severity: str
    state: str
    message: str
    key: str | None
    value: float | None
    threshold: float | None
    # Occurrences of this alert (re-triggers while it was open).
    occurrence_count: int
    # Shared by alerts of the same rule, device and severity raised within the grouping window.
    group_id: uuid.UUID
    created_at: datetime
    last_occurred_at: datetime
    acknowledged_at: datetime | None
    investigating_at: datetime | None
    resolved_at: datetime | None
    tta_minutes: int
    ttr_minutes: int
    tta_due_at: datetime
    ttr_due_at: datetime
    tta_breached: bool
    ttr_breached: bool


class AlertGroup(BaseModel):
    id: uuid.UUID
    alert_count: int
    # Occurrences of every alert of the group.
    occurrence_count: int
    first_occurred_at: datetime
    last_occurred_at: datetime


class AlertHistoryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    # "state": a lifecycle change; "escalation": a tier of an escalation policy fired.
    event: str
    from_state: str | None
    to_state: str
    actor_type: str
    actor_id: uuid.UUID | None
    notes: str | None
    created_at: datetime


class AlertDetail(AlertOut):
    group: AlertGroup
    history: list[AlertHistoryOut]


class AlertList(BaseModel):
    alerts: list[AlertOut]
    total: int
    limit: int
    offset: int
