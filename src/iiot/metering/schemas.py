"""Wire format of the usage report."""

from __future__ import annotations

import uuid
from datetime import date

from pydantic import BaseModel, Field


class UsageFigures(BaseModel):
    api_requests: int = 0
    device_messages: int = 0
    telemetry_points: int = 0
    stored_points: int = 0
    rule_evaluations: int = 0
    emails_sent: int = 0
    webhooks_sent: int = 0


class UsagePeriod(UsageFigures):
    period: date  # the day, or the first day of the month


class DeviceUsage(BaseModel):
    device_id: uuid.UUID
    name: str | None  # None once the device is deleted
    points: int


class UsageReport(BaseModel):
    tenant_id: uuid.UUID
    from_: date = Field(serialization_alias="from")
    to: date
    granularity: str
    periods: list[UsagePeriod]
    totals: UsageFigures
    top_devices: list[DeviceUsage]
    flush_interval_seconds: float
