"""Escalation policies, their persisted progress per alert, and on-call schedules (tenant-owned).

A policy escalates every unacknowledged alert of a severity it lists, tier by tier; each tier
that has fired is one `alert_escalations` row, so a tier fires exactly once even across
restarts. An on-call schedule rotates its participants weekly (in its own time zone) unless an
override covers the moment; a policy tier may name a schedule as a recipient.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TIMESTAMP
from sqlalchemy.orm import Mapped, mapped_column

from iiot.models.base import Base, Timestamps, new_id


class EscalationPolicy(Base, Timestamps):
    __tablename__ = "escalation_policies"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name"),
        CheckConstraint(
            "severities <@ array['critical','high','medium','low','info']::varchar[]",
            name="severities_valid",
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="cascade"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(2000))
    severities: Mapped[list[str]] = mapped_column(ARRAY(String(16)))
    enabled: Mapped[bool] = mapped_column(default=True, server_default="true")
    # [{delay_minutes, channels: [email|webhook], recipients: [e-mail | URL | schedule:<id>]}]
    tiers: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    # HMAC key of this policy's webhook calls (same signature scheme as rule webhooks).
    webhook_secret: Mapped[str | None] = mapped_column(String(128))
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="set null")
    )


class AlertEscalation(Base):
    """One tier of one policy fired for one alert: the persisted progress of an escalation."""

    __tablename__ = "alert_escalations"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "alert_id"],
            ["alerts.tenant_id", "alerts.id"],
            ondelete="cascade",
            name="fk_alert_escalations_tenant_id_alert_id_alerts",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "policy_id"],
            ["escalation_policies.tenant_id", "escalation_policies.id"],
            ondelete="cascade",
            name="fk_alert_escalations_tenant_id_policy_id_escalation_policies",
        ),
        Index("ix_alert_escalations_tenant_id_policy_id", "tenant_id", "policy_id"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    alert_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    policy_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tier: Mapped[int] = mapped_column(primary_key=True)
    fired_at: Mapped[datetime]
    recipients: Mapped[list[str]] = mapped_column(
        JSONB, default=list, server_default=text("'[]'::jsonb")
    )


class OnCallSchedule(Base, Timestamps):
    __tablename__ = "oncall_schedules"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="cascade"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    time_zone: Mapped[str] = mapped_column(String(64))
    # Wall-clock time (in `time_zone`) of the first hand-over; hand-overs repeat weekly.
    rotation_start: Mapped[datetime] = mapped_column(TIMESTAMP(timezone=False))
    # [{email, name}] in rotation order.
    participants: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="set null")
    )


class OnCallOverride(Base):
    """Someone else on call for [starts_at, ends_at); where overrides overlap, the newest wins."""

    __tablename__ = "oncall_overrides"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "schedule_id"],
            ["oncall_schedules.tenant_id", "oncall_schedules.id"],
            ondelete="cascade",
            name="fk_oncall_overrides_tenant_id_schedule_id_oncall_schedules",
        ),
        CheckConstraint("ends_at > starts_at", name="period_valid"),
        Index("ix_oncall_overrides_tenant_id_schedule_id", "tenant_id", "schedule_id", "ends_at"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    schedule_id: Mapped[uuid.UUID]
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="set null")
    )
