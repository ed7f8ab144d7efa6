"""foundation: tiers, tenants, users, memberships, tokens, audit

Revision ID: 0001
Revises:
Create Date: 2026-11-27

Tenant-owned tables here: memberships, audit_events (RLS enabled and forced).
Cross-tenant look-up: iiot_user_memberships(user_id), a narrow SECURITY DEFINER function.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from iiot.migrations.rls import disable_tenant_rls, enable_tenant_rls

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIERS: list[dict[str, Any]] = [
    {
        "name": "starter",
        "display_name": "Starter",
        "max_devices": 10,
        "max_users": 5,
        "max_telemetry_points_per_day": 100_000,
        "max_retention_days": 30,
        "api_requests_per_minute": 600,
    },
    {
        "name": "professional",
        "display_name": "Professional",
        "max_devices": 500,
        "max_users": 50,
        "max_telemetry_points_per_day": 10_000_000,
        "max_retention_days": 90,
        "api_requests_per_minute": 6_000,
    },
    {
        "name": "enterprise",
        "display_name": "Enterprise",
        "max_devices": None,
        "max_users": None,
        "max_telemetry_points_per_day": None,
        "max_retention_days": 365,
        "api_requests_per_minute": None,
    },
]

# The memberships of one user across tenants (login, tenant list, per-request role check).
# Runs with the owner's rights; returns only the columns those callers need.
USER_MEMBERSHIPS_FN = """
create function iiot_user_memberships(p_user_id uuid)
returns table (tenant_id uuid, role text, status text)
language sql stable security definer
set search_path = public, pg_temp
as $$
    select m.tenant_id, m.role::text, m.status::text
    from memberships m
    where m.user_id = p_user_id
$$;
revoke all on function iiot_user_memberships(uuid) from public;
"""


def upgrade() -> None:
    op.create_table(
        "tiers",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("display_name", sa.String(length=64), nullable=False),
        sa.Column("max_devices", sa.Integer(), nullable=True),
        sa.Column("max_users", sa.Integer(), nullable=True),
        sa.Column("max_telemetry_points_per_day", sa.Integer(), nullable=True),
        sa.Column("max_retention_days", sa.Integer(), nullable=True),
        sa.Column("api_requests_per_minute", sa.Integer(), nullable=True),
        sa.Column(
            "features",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_tiers")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("full_name", sa.String(length=200), nullable=True),
        sa.Column("is_system_admin", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status in ('active','invited','disabled')", name=op.f("ck_users_status_valid")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
    )
    op.create_index("ix_users_email_lower", "users", [sa.text("lower(email)")], unique=True)
    op.create_table(
        "platform_audit_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("actor_id", sa.UUID(), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=320), nullable=True),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("ip", postgresql.INET(), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["users.id"],
            name=op.f("fk_platform_audit_events_actor_id_users"),
            ondelete="set null",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platform_audit_events")),
    )
    op.create_index(
        "ix_platform_audit_events_created_at", "platform_audit_events", ["created_at"], unique=False
    )
    op.create_table(
        "tenants",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("slug", sa.String(length=63), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("tier", sa.String(length=32), nullable=False),
        sa.Column("max_devices", sa.Integer(), nullable=True),
        sa.Column("max_users", sa.Integer(), nullable=True),
        sa.Column("max_telemetry_points_per_day", sa.Integer(), nullable=True),
        sa.Column("max_retention_days", sa.Integer(), nullable=True),
        sa.Column(
            "enabled_features",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "branding",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "settings",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "slug ~ '^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$'", name=op.f("ck_tenants_slug_format")
        ),
        sa.CheckConstraint(
            "status in ('active','suspended','trial','churned')",
            name=op.f("ck_tenants_status_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["tier"], ["tiers.name"], name=op.f("fk_tenants_tier_tiers"), onupdate="cascade"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
    )
    op.create_index("ix_tenants_slug", "tenants", ["slug"], unique=True)
    op.create_index("ix_tenants_status_tier", "tenants", ["status", "tier"], unique=False)
    op.create_table(
        "audit_events",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("actor_type", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.UUID(), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=32), nullable=True),
        sa.Column("target_id", sa.String(length=64), nullable=True),
        sa.Column("before", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("after", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("ip", postgresql.INET(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_audit_events_tenant_id_tenants"),
            ondelete="cascade",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_audit_events")),
    )
    op.create_index(
        "ix_audit_events_tenant_id_action", "audit_events", ["tenant_id", "action"], unique=False
    )
    op.create_index(
        "ix_audit_events_tenant_id_created_at",
        "audit_events",
        ["tenant_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "memberships",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("invited_by", sa.UUID(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "role in ('viewer','operator','developer','admin')",
            name=op.f("ck_memberships_role_valid"),
        ),
        sa.CheckConstraint(
            "status in ('active','invited')", name=op.f("ck_memberships_status_valid")
        ),
        sa.ForeignKeyConstraint(
            ["invited_by"],
            ["users.id"],
            name=op.f("fk_memberships_invited_by_users"),
            ondelete="set null",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_memberships_tenant_id_tenants"),
            ondelete="cascade",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_memberships_user_id_users"), ondelete="cascade"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", name=op.f("pk_memberships")),
    )
    op.create_index(
        "ix_memberships_tenant_id_role", "memberships", ["tenant_id", "role"], unique=False
    )
    op.create_index("ix_memberships_user_id", "memberships", ["user_id"], unique=False)
    op.create_table(
        "refresh_tokens",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("family_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("active_tenant_id", sa.UUID(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["active_tenant_id"],
            ["tenants.id"],
            name=op.f("fk_refresh_tokens_active_tenant_id_tenants"),
            ondelete="cascade",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_refresh_tokens_user_id_users"),
            ondelete="cascade",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refresh_tokens")),
    )
    op.create_index("ix_refresh_tokens_family_id", "refresh_tokens", ["family_id"], unique=False)
    op.create_index("ix_refresh_tokens_token_hash", "refresh_tokens", ["token_hash"], unique=True)
    op.create_index(
        "ix_refresh_tokens_user_id_active_tenant_id",
        "refresh_tokens",
        ["user_id", "active_tenant_id"],
        unique=False,
    )

    op.create_table(
        "tenant_quota_locks",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_tenant_quota_locks_tenant_id_tenants"),
            ondelete="cascade",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_tenant_quota_locks")),
    )
    enable_tenant_rls("tenant_quota_locks")
    enable_tenant_rls("memberships")
    enable_tenant_rls("audit_events")
    op.execute(USER_MEMBERSHIPS_FN)
    op.bulk_insert(
        sa.table(
            "tiers",
            sa.column("name", sa.String),
            sa.column("display_name", sa.String),
            sa.column("max_devices", sa.Integer),
            sa.column("max_users", sa.Integer),
            sa.column("max_telemetry_points_per_day", sa.BigInteger),
            sa.column("max_retention_days", sa.Integer),
            sa.column("api_requests_per_minute", sa.Integer),
        ),
        TIERS,
    )


def downgrade() -> None:
    op.execute("drop function if exists iiot_user_memberships(uuid)")
    disable_tenant_rls("audit_events")
    disable_tenant_rls("memberships")
    op.drop_table("tenant_quota_locks")
    op.drop_index("ix_refresh_tokens_user_id_active_tenant_id", table_name="refresh_tokens")
    op.drop_index("ix_refresh_tokens_token_hash", table_name="refresh_tokens")
    op.drop_index("ix_refresh_tokens_family_id", table_name="refresh_tokens")
    op.drop_table("refresh_tokens")
    op.drop_index("ix_memberships_user_id", table_name="memberships")
    op.drop_index("ix_memberships_tenant_id_role", table_name="memberships")
    op.drop_table("memberships")
    op.drop_index("ix_audit_events_tenant_id_created_at", table_name="audit_events")
    op.drop_index("ix_audit_events_tenant_id_action", table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_index("ix_tenants_status_tier", table_name="tenants")
    op.drop_index("ix_tenants_slug", table_name="tenants")
    op.drop_table("tenants")
    op.drop_index("ix_platform_audit_events_created_at", table_name="platform_audit_events")
    op.drop_table("platform_audit_events")
    op.drop_index("ix_users_email_lower", table_name="users")
    op.drop_table("users")
    op.drop_table("tiers")
