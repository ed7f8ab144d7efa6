"""Wire format of alerts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

AlertState = Literal["new", "acknowledged", "investigating", "resolved"]


class TransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    notes: str | None = Field(default=None, max_length=2000)


class AlertOut(BaseModel):
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
    occurrence_count: int
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


class AlertHistoryOut(BaseModel):
    from_state: str | None
    to_state: str
    actor_type: str
    actor_id: uuid.UUID | None
    notes: str | None
    created_at: datetime


class AlertDetail(AlertOut):
    history: list[AlertHistoryOut]


class AlertList(BaseModel):
    alerts: list[AlertOut]
    total: int
    limit: int
    offset: int
