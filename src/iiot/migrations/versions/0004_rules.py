"""rules, alerts, notifications, api keys

Revision ID: 0004
Revises: 0003

Tenant-owned tables here (RLS enabled and forced): api_keys, rules, rule_states, alerts,
alert_history, webhook_deliveries. Rule, state and alert rows point at devices and at each
other through composite (tenant_id, id) foreign keys.

Cross-tenant look-ups, each a narrow SECURITY DEFINER function:
- iiot_api_key_by_token(digest): the one live key with that digest and its tenant's status;
- iiot_due_webhook_deliveries(limit): (tenant_id, id) of webhook calls due now;
- iiot_tenants_with_offline_rules(): tenants with an enabled device-offline rule.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from iiot.migrations.rls import disable_tenant_rls, enable_tenant_rls

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("api_keys", "rules", "rule_states", "alerts", "alert_history", "webhook_deliveries")

FUNCTIONS = """
create function iiot_api_key_by_token(p_digest bytea)
returns table (
    id uuid, tenant_id uuid, scopes text[], expires_at timestamptz,
    last_used_at timestamptz, tenant_status text
)
language sql stable security definer
set search_path = public, pg_temp
as $$
    select k.id, k.tenant_id, k.scopes::text[], k.expires_at, k.last_used_at, t.status::text
    from api_keys k
    join tenants t on t.id = k.tenant_id
    where k.token_hash = p_digest and k.revoked_at is null and t.deleted_at is null
$$;
revoke all on function iiot_api_key_by_token(bytea) from public;

create function iiot_due_webhook_deliveries(p_limit integer)
returns table (tenant_id uuid, id uuid)
language sql stable security definer
set search_path = public, pg_temp
as $$
    select d.tenant_id, d.id
    from webhook_deliveries d
    where d.status = 'pending' and d.next_attempt_at <= now()
    order by d.next_attempt_at
    limit least(greatest(p_limit, 1), 1000)
$$;
revoke all on function iiot_due_webhook_deliveries(integer) from public;

create function iiot_tenants_with_offline_rules()
returns setof uuid
language sql stable security definer
set search_path = public, pg_temp
as $$
    select distinct r.tenant_id
    from rules r
    join tenants t on t.id = r.tenant_id
    where r.enabled and r.rule_type = 'time_based'
      and t.status = 'active' and t.deleted_at is null
$$;
revoke all on function iiot_tenants_with_offline_rules() from public;
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
    op.create_table(
        "api_keys",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.String(length=32)), nullable=False),
        sa.Column("created_by", sa.UUID(), nullable=True),
        _ts("created_at"),
        _ts("expires_at", nullable=True, default=False),
        _ts("last_used_at", nullable=True, default=False),
        _ts("revoked_at", nullable=True, default=False),
        sa.CheckConstraint(
            "scopes <@ array['telemetry:write','read','manage']::varchar[]",
            name=op.f("ck_api_keys_scopes_valid"),
        ),
        _created_by_fk("api_keys"),
        _tenant_fk("api_keys"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_api_keys")),
    )
    op.create_index(
        "ix_api_keys_tenant_id_created_at", "api_keys", ["tenant_id", "created_at"], unique=False
    )
    op.create_index("ix_api_keys_token_hash", "api_keys", ["token_hash"], unique=True)

    op.create_table(
        "rules",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=2000), nullable=True),
        sa.Column("rule_type", sa.String(length=16), nullable=False),
        sa.Column("condition", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("device_id", sa.UUID(), nullable=True),
        sa.Column("device_type", sa.String(length=64), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("priority", sa.Integer(), server_default="0", nullable=False),
        sa.Column("cooldown_seconds", sa.Integer(), server_default="0", nullable=False),
        sa.Column("severity", sa.String(length=16), server_default="medium", nullable=False),
        sa.Column("auto_resolve", sa.Boolean(), server_default="false", nullable=False),
        sa.Column(
            "actions",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("webhook_secret", sa.String(length=128), nullable=True),
        sa.Column("created_by", sa.UUID(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint(
            "rule_type in ('threshold','comparison','statistical','time_based')",
            name=op.f("ck_rules_rule_type_valid"),
        ),
        sa.CheckConstraint(
            "severity in ('critical','high','medium','low','info')",
            name=op.f("ck_rules_severity_valid"),
        ),
        sa.CheckConstraint(
            "device_id is null or device_type is null", name=op.f("ck_rules_one_target")
        ),
        _created_by_fk("rules"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "device_id"],
            ["devices.tenant_id", "devices.id"],
            name="fk_rules_tenant_id_device_id_devices",
            ondelete="cascade",
        ),
        _tenant_fk("rules"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_rules")),
    )
    op.create_index("ix_rules_tenant_id_device_id", "rules", ["tenant_id", "device_id"])
    op.create_index("ix_rules_tenant_id_enabled", "rules", ["tenant_id", "enabled"])

    op.create_table(
        "rule_states",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("rule_id", sa.UUID(), nullable=False),
        sa.Column("device_id", sa.UUID(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default="false", nullable=False),
        _ts("since"),
        _ts("last_triggered_at", nullable=True, default=False),
        sa.Column("trigger_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_value", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id", "device_id"],
            ["devices.tenant_id", "devices.id"],
            name="fk_rule_states_tenant_id_device_id_devices",
            ondelete="cascade",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "rule_id"],
            ["rules.tenant_id", "rules.id"],
            name="fk_rule_states_tenant_id_rule_id_rules",
            ondelete="cascade",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "rule_id", "device_id", name=op.f("pk_rule_states")),
    )
    op.create_index("ix_rule_states_tenant_id_device_id", "rule_states", ["tenant_id", "device_id"])

    op.create_table(
        "alerts",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("rule_id", sa.UUID(), nullable=True),
        sa.Column("device_id", sa.UUID(), nullable=True),
        sa.Column("rule_name", sa.String(length=200), nullable=False),
        sa.Column("device_name", sa.String(length=200), nullable=True),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), server_default="new", nullable=False),
        sa.Column("message", sa.String(length=2000), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=True),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("threshold", sa.Double(), nullable=True),
        sa.Column("occurrence_count", sa.Integer(), server_default="1", nullable=False),
        _ts("created_at"),
        _ts("last_occurred_at"),
        _ts("acknowledged_at", nullable=True, default=False),
        _ts("investigating_at", nullable=True, default=False),
        _ts("resolved_at", nullable=True, default=False),
        sa.CheckConstraint(
            "severity in ('critical','high','medium','low','info')",
            name=op.f("ck_alerts_severity_valid"),
        ),
        sa.CheckConstraint(
            "state in ('new','acknowledged','investigating','resolved')",
            name=op.f("ck_alerts_state_valid"),
        ),
        # PostgreSQL 15: clear only the reference column, never tenant_id.
        sa.ForeignKeyConstraint(
            ["tenant_id", "device_id"],
            ["devices.tenant_id", "devices.id"],
            name="fk_alerts_tenant_id_device_id_devices",
            ondelete="SET NULL (device_id)",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "rule_id"],
            ["rules.tenant_id", "rules.id"],
            name="fk_alerts_tenant_id_rule_id_rules",
            ondelete="SET NULL (rule_id)",
        ),
        _tenant_fk("alerts"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_alerts")),
    )
    op.create_index(
        "ix_alerts_one_open_per_rule_device",
        "alerts",
        ["tenant_id", "rule_id", "device_id"],
        unique=True,
        postgresql_where=sa.text("state <> 'resolved'"),
    )
    op.create_index("ix_alerts_tenant_id_created_at", "alerts", ["tenant_id", "created_at"])
    op.create_index("ix_alerts_tenant_id_state", "alerts", ["tenant_id", "state"])

    op.create_table(
        "alert_history",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("alert_id", sa.UUID(), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("actor_type", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.UUID(), nullable=True),
        sa.Column("notes", sa.String(length=2000), nullable=True),
        _ts("created_at"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "alert_id"],
            ["alerts.tenant_id", "alerts.id"],
            name="fk_alert_history_tenant_id_alert_id_alerts",
            ondelete="cascade",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_alert_history")),
    )
    op.create_index(
        "ix_alert_history_tenant_id_alert_id",
        "alert_history",
        ["tenant_id", "alert_id", "created_at"],
    )

    op.create_table(
        "webhook_deliveries",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("rule_id", sa.UUID(), nullable=True),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        _ts("next_attempt_at"),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        _ts("created_at"),
        _ts("delivered_at", nullable=True, default=False),
        sa.CheckConstraint(
            "status in ('pending','delivered','failed')",
            name=op.f("ck_webhook_deliveries_status_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "rule_id"],
            ["rules.tenant_id", "rules.id"],
            name="fk_webhook_deliveries_tenant_id_rule_id_rules",
            ondelete="SET NULL (rule_id)",
        ),
        _tenant_fk("webhook_deliveries"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_webhook_deliveries")),
    )
    op.create_index(
        "ix_webhook_deliveries_tenant_id_pending",
        "webhook_deliveries",
        ["tenant_id", "next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_webhook_deliveries_tenant_id_rule_id", "webhook_deliveries", ["tenant_id", "rule_id"]
    )

    for table in TABLES:
        enable_tenant_rls(table)
    op.execute(FUNCTIONS)


def downgrade() -> None:
    op.execute("drop function if exists iiot_tenants_with_offline_rules()")
    op.execute("drop function if exists iiot_due_webhook_deliveries(integer)")
    op.execute("drop function if exists iiot_api_key_by_token(bytea)")
    for table in reversed(TABLES):
        disable_tenant_rls(table)
        op.drop_table(table)
