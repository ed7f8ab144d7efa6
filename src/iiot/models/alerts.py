"""Alerts raised by rules and the history of their state changes (tenant-owned)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from iiot.models.base import Base, new_id

ALERT_STATES = ("new", "acknowledged", "investigating", "resolved")


class Alert(Base):
    """At most one open (not resolved) alert per (rule, device): re-triggers count occurrences.

    The rule and device references are cleared (not the tenant) when either is deleted, so the
    alert and its history stay.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "rule_id"],
            ["rules.tenant_id", "rules.id"],
            ondelete="SET NULL (rule_id)",
            name="fk_alerts_tenant_id_rule_id_rules",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "device_id"],
            ["devices.tenant_id", "devices.id"],
            ondelete="SET NULL (device_id)",
            name="fk_alerts_tenant_id_device_id_devices",
        ),
        CheckConstraint(
            "state in ('new','acknowledged','investigating','resolved')", name="state_valid"
        ),
        CheckConstraint(
            "severity in ('critical','high','medium','low','info')", name="severity_valid"
        ),
        Index(
            "ix_alerts_one_open_per_rule_device",
            "tenant_id",
            "rule_id",
            "device_id",
            unique=True,
            postgresql_where=text("state <> 'resolved'"),
        ),
        Index("ix_alerts_tenant_id_created_at", "tenant_id", "created_at"),
        Index("ix_alerts_tenant_id_state", "tenant_id", "state"),
        Index(
            "ix_alerts_tenant_id_rule_id_device_id_last_occurred_at",
            "tenant_id",
            "rule_id",
            "device_id",
            "last_occurred_at",
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="cascade"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    rule_id: Mapped[uuid.UUID | None]
    device_id: Mapped[uuid.UUID | None]
    rule_name: Mapped[str] = mapped_column(String(200))
    device_name: Mapped[str | None] = mapped_column(String(200))
    severity: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="new", server_default="new")
    message: Mapped[str] = mapped_column(String(2000))
    key: Mapped[str | None] = mapped_column(String(200))
    value: Mapped[float | None]
    threshold: Mapped[float | None]
    occurrence_count: Mapped[int] = mapped_column(default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_occurred_at: Mapped[datetime] = mapped_column(server_default=func.now())
    acknowledged_at: Mapped[datetime | None]
    investigating_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    # Alerts of the same rule, device and severity raised within the grouping window of each
    # other share a group (the id of its first alert).
    group_id: Mapped[uuid.UUID | None]


class AlertHistory(Base):
    """One state change of an alert: who, when, from what to what, and why."""

    __tablename__ = "alert_history"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "alert_id"],
            ["alerts.tenant_id", "alerts.id"],
            ondelete="cascade",
            name="fk_alert_history_tenant_id_alert_id_alerts",
        ),
        Index("ix_alert_history_tenant_id_alert_id", "tenant_id", "alert_id", "created_at"),
        CheckConstraint("event in ('state','escalation')", name="event_valid"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    alert_id: Mapped[uuid.UUID]
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[uuid.UUID | None]
    notes: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # "state": a lifecycle change; "escalation": a tier of an escalation policy fired.
    event: Mapped[str] = mapped_column(String(16), default="state", server_default="state")
