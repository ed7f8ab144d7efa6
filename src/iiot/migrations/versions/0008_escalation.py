"""parity with the original platform: own webhook secrets, alert grouping, escalation policies
and on-call schedules

Revision ID: 0008
Revises: 0005

- rules.webhook_secrets: the author's own signing key per webhook URL;
- alerts.group_id: repeated alerts of one rule, device and severity share a group;
- alert_history.event: lifecycle change or escalation;
- escalation_policies, alert_escalations (one row per fired tier), oncall_schedules,
  oncall_overrides: tenant-owned, under the tenant policy, composite keys;
- iiot_tenants_with_pending_escalations(): tenants with an unacknowledged alert that an
  enabled policy has tiers left for (the escalation job's only cross-tenant read).
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from iiot.migrations.rls import disable_tenant_rls, enable_tenant_rls

revision: str = "0008"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("escalation_policies", "alert_escalations", "oncall_schedules", "oncall_overrides")

FUNCTIONS = """
create function iiot_tenants_with_pending_escalations()
returns setof uuid
language sql stable security definer
set search_path = public, pg_temp
as $$
    select distinct a.tenant_id
    from alerts a
    join escalation_policies p
      on p.tenant_id = a.tenant_id and p.enabled and a.severity = any(p.severities)
    join tenants t on t.id = a.tenant_id
    where a.state = 'new' and t.status = 'active' and t.deleted_at is null
      and (select count(*) from alert_escalations e
           where e.tenant_id = a.tenant_id and e.alert_id = a.id and e.policy_id = p.id)
          < jsonb_array_length(p.tiers)
$$;
revoke all on function iiot_tenants_with_pending_escalations() from public;
"""


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"],
        ["tenants.id"],
        name=op.f(f"fk_{table}_tenant_id_tenants"),
        ondelete="cascade",
    )


def _created_by_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["created_by"], ["users.id"], name=op.f(f"fk_{table}_created_by_users"), ondelete="set null"
    )


def _ts(name: str, *, nullable: bool = False, default: bool = True) -> sa.Column[Any]:
    return sa.Column(
        name,
        sa.DateTime(timezone=True),
        server_default=sa.text("now()") if default else None,
        nullable=nullable,
    )


def upgrade() -> None:
    op.add_column(
        "rules",
        sa.Column(
            "webhook_secrets",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
    )
    op.add_column("alerts", sa.Column("group_id", sa.UUID(), nullable=True))
    op.create_index(
        "ix_alerts_tenant_id_rule_id_device_id_last_occurred_at",
        "alerts",
        ["tenant_id", "rule_id", "device_id", "last_occurred_at"],
    )
    op.add_column(
        "alert_history",
        sa.Column("event", sa.String(length=16), server_default="state", nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_alert_history_event_valid"), "alert_history", "event in ('state','escalation')"
    )

    op.create_table(
        "escalation_policies",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=2000), nullable=True),
        sa.Column("severities", postgresql.ARRAY(sa.String(length=16)), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("tiers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("webhook_secret", sa.String(length=128), nullable=True),
        sa.Column("created_by", sa.UUID(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint(
            "severities <@ array['critical','high','medium','low','info']::varchar[]",
            name=op.f("ck_escalation_policies_severities_valid"),
        ),
        _created_by_fk("escalation_policies"),
        _tenant_fk("escalation_policies"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_escalation_policies")),
        sa.UniqueConstraint(
            "tenant_id", "name", name=op.f("uq_escalation_policies_tenant_id_name")
        ),
    )

    op.create_table(
        "alert_escalations",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("alert_id", sa.UUID(), nullable=False),
        sa.Column("policy_id", sa.UUID(), nullable=False),
        sa.Column("tier", sa.Integer(), nullable=False),
        _ts("fired_at", default=False),
        sa.Column(
            "recipients",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "alert_id"],
            ["alerts.tenant_id", "alerts.id"],
            name="fk_alert_escalations_tenant_id_alert_id_alerts",
            ondelete="cascade",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "policy_id"],
            ["escalation_policies.tenant_id", "escalation_policies.id"],
            name="fk_alert_escalations_tenant_id_policy_id_escalation_policies",
            ondelete="cascade",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "alert_id", "policy_id", "tier", name=op.f("pk_alert_escalations")
        ),
    )
    op.create_index(
        "ix_alert_escalations_tenant_id_policy_id", "alert_escalations", ["tenant_id", "policy_id"]
    )

    op.create_table(
        "oncall_schedules",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("rotation_start", postgresql.TIMESTAMP(), nullable=False),
        sa.Column("participants", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_by", sa.UUID(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        _created_by_fk("oncall_schedules"),
        _tenant_fk("oncall_schedules"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_oncall_schedules")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_oncall_schedules_tenant_id_name")),
    )

    op.create_table(
        "oncall_overrides",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("schedule_id", sa.UUID(), nullable=False),
        _ts("starts_at", default=False),
        _ts("ends_at", default=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        _ts("created_at"),
        sa.Column("created_by", sa.UUID(), nullable=True),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_oncall_overrides_period_valid")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "schedule_id"],
            ["oncall_schedules.tenant_id", "oncall_schedules.id"],
            name="fk_oncall_overrides_tenant_id_schedule_id_oncall_schedules",
            ondelete="cascade",
        ),
        _created_by_fk("oncall_overrides"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_oncall_overrides")),
    )
    op.create_index(
        "ix_oncall_overrides_tenant_id_schedule_id",
        "oncall_overrides",
        ["tenant_id", "schedule_id", "ends_at"],
    )

    for table in TABLES:
        enable_tenant_rls(table)
    op.execute(FUNCTIONS)


def downgrade() -> None:
    op.execute("drop function if exists iiot_tenants_with_pending_escalations()")
    for table in reversed(TABLES):
        disable_tenant_rls(table)
        op.drop_table(table)
    op.drop_constraint(op.f("ck_alert_history_event_valid"), "alert_history", type_="check")
    op.drop_column("alert_history", "event")
    op.drop_index("ix_alerts_tenant_id_rule_id_device_id_last_occurred_at", table_name="alerts")
    op.drop_column("alerts", "group_id")
    op.drop_column("rules", "webhook_secrets")
