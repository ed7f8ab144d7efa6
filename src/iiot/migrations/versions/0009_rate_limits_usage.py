"""rate limits and usage metering

Revision ID: 0009
Revises: 0008

Per-tenant rate limits next to the existing quotas: `api_requests_per_minute` becomes a
tenant override too, and `max_device_messages_per_minute` (per device) and
`max_points_per_second` (the tenant's ingest as a whole) are new on tiers and tenants (NULL on
a tenant: the tier's value; NULL on a tier: unlimited).

Usage metering: `usage_daily` holds one counter per tenant, UTC day and metric (API requests,
device messages, telemetry points, ...), and `device_usage_daily` the points per device and
day. Both are written by the periodic flush of the in-process (or Redis) aggregates, never
per request.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from iiot.migrations.rls import disable_tenant_rls, enable_tenant_rls

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIER_DEFAULTS = {
    "starter": (600, 1_000),
    "professional": (6_000, 10_000),
    "enterprise": (None, None),
}


def upgrade() -> None:
    for table in ("tiers", "tenants"):
        op.add_column(table, sa.Column("max_device_messages_per_minute", sa.Integer()))
        op.add_column(table, sa.Column("max_points_per_second", sa.Integer()))
    op.add_column("tenants", sa.Column("api_requests_per_minute", sa.Integer()))
    tiers = sa.table(
        "tiers",
        sa.column("name", sa.String),
        sa.column("max_device_messages_per_minute", sa.Integer),
        sa.column("max_points_per_second", sa.Integer),
    )
    for name, (messages, points) in TIER_DEFAULTS.items():
        op.execute(
            tiers.update()
            .where(tiers.c.name == name)
            .values(max_device_messages_per_minute=messages, max_points_per_second=points)
        )

    op.create_table(
        "usage_daily",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("metric", sa.String(32), nullable=False),
        sa.Column("value", sa.BigInteger(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_usage_daily_tenant_id_tenants"),
            ondelete="cascade",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "day", "metric", name=op.f("pk_usage_daily")),
    )
    enable_tenant_rls("usage_daily")

    # No foreign key to devices: the history of a deleted device stays in the tenant's usage.
    op.create_table(
        "device_usage_daily",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("device_id", sa.UUID(), nullable=False),
        sa.Column("points", sa.BigInteger(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_device_usage_daily_tenant_id_tenants"),
            ondelete="cascade",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "day", "device_id", name=op.f("pk_device_usage_daily")
        ),
    )
    enable_tenant_rls("device_usage_daily")


def downgrade() -> None:
    disable_tenant_rls("device_usage_daily")
    op.drop_table("device_usage_daily")
    disable_tenant_rls("usage_daily")
    op.drop_table("usage_daily")
    op.drop_column("tenants", "api_requests_per_minute")
    for table in ("tiers", "tenants"):
        op.drop_column(table, "max_points_per_second")
        op.drop_column(table, "max_device_messages_per_minute")
