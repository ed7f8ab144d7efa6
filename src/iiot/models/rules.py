"""Rules, their per-(rule, device) evaluation state and the webhook outbox (tenant-owned)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from iiot.models.base import Base, Timestamps, new_id

RULE_TYPES = ("threshold", "comparison", "statistical", "time_based")
SEVERITIES = ("critical", "high", "medium", "low", "info")


class Rule(Base, Timestamps):
    """A condition on a device's telemetry and the actions run when it becomes true.

    Targets one device (`device_id`), all devices of a type (`device_type`) or, with neither,
    every device of the tenant.
    """

    __tablename__ = "rules"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "device_id"],
            ["devices.tenant_id", "devices.id"],
            ondelete="cascade",
            name="fk_rules_tenant_id_device_id_devices",
        ),
        CheckConstraint(
            "rule_type in ('threshold','comparison','statistical','time_based')",
            name="rule_type_valid",
        ),
        CheckConstraint(
            "severity in ('critical','high','medium','low','info')", name="severity_valid"
        ),
        CheckConstraint("device_id is null or device_type is null", name="one_target"),
        Index("ix_rules_tenant_id_enabled", "tenant_id", "enabled"),
        Index("ix_rules_tenant_id_device_id", "tenant_id", "device_id"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="cascade"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(2000))
    rule_type: Mapped[str] = mapped_column(String(16))
    condition: Mapped[dict[str, Any]]
    device_id: Mapped[uuid.UUID | None]
    device_type: Mapped[str | None] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(default=True, server_default="true")
    priority: Mapped[int] = mapped_column(default=0, server_default="0")
    cooldown_seconds: Mapped[int] = mapped_column(default=0, server_default="0")
    severity: Mapped[str] = mapped_column(String(16), default="medium", server_default="medium")
    auto_resolve: Mapped[bool] = mapped_column(default=False, server_default="false")
    actions: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB,
        default=list,
        server_default=text("'[]'::jsonb"),
    )
    # HMAC key for webhook signatures: it must be readable to sign, so it is kept as is and
    # shown to the rule's author once.
    webhook_secret: Mapped[str | None] = mapped_column(String(128))
    # The author's own signing keys, by webhook URL (given with the action, never shown back);
    # a webhook without one is signed with `webhook_secret`.
    webhook_secrets: Mapped[dict[str, str]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="set null")
    )


class RuleState(Base):
    """Edge-trigger state of one rule for one device, persisted so restarts repeat nothing."""

    __tablename__ = "rule_states"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "rule_id"],
            ["rules.tenant_id", "rules.id"],
            ondelete="cascade",
            name="fk_rule_states_tenant_id_rule_id_rules",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "device_id"],
            ["devices.tenant_id", "devices.id"],
            ondelete="cascade",
            name="fk_rule_states_tenant_id_device_id_devices",
        ),
        Index("ix_rule_states_tenant_id_device_id", "tenant_id", "device_id"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    rule_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    device_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    active: Mapped[bool] = mapped_column(default=False, server_default="false")
    since: Mapped[datetime] = mapped_column(server_default=func.now())
    last_triggered_at: Mapped[datetime | None]
    trigger_count: Mapped[int] = mapped_column(default=0, server_default="0")
    last_value: Mapped[float | None]


class WebhookDelivery(Base):
    """Outbox of webhook calls: written with the trigger, sent after commit, retried."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint("status in ('pending','delivered','failed')", name="status_valid"),
        Index(
            "ix_webhook_deliveries_tenant_id_pending",
            "tenant_id",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_webhook_deliveries_tenant_id_rule_id", "tenant_id", "rule_id"),
        ForeignKeyConstraint(
            ["tenant_id", "rule_id"],
            ["rules.tenant_id", "rules.id"],
            ondelete="SET NULL (rule_id)",
            name="fk_webhook_deliveries_tenant_id_rule_id_rules",
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="cascade"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    rule_id: Mapped[uuid.UUID | None]
    url: Mapped[str] = mapped_column(String(2048))
    body: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    delivered_at: Mapped[datetime | None]


class RuleBatch(Base):
    """A committed telemetry batch waiting for the rules engine (written by the ingest
    statement; deleted by the evaluation that commits its effects; parked after failures)."""

    __tablename__ = "rule_batches"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="cascade"), primary_key=True
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    points: Mapped[Any] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    parked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
