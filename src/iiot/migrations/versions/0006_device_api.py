"""device API: gateways, attributes, RPC

Revision ID: 0006
Revises: 0005

`devices` gains `is_gateway`, `gateway_id` (the gateway a sub-device was created by; the
composite foreign key sets only `gateway_id` to null when the gateway is deleted) and
`disconnected_at` (when its last live session closed: offline from then on). Sub-devices
are unique by name among one gateway's devices.

Tenant-owned tables here (RLS enabled and forced): device_attributes (one row per device, scope
and key; the value is any JSON value) and device_rpc (calls to devices: method, parameters,
status and the device's reply). Both point at their device through (tenant_id, device_id).

Cross-tenant look-up (SECURITY DEFINER): iiot_tenants_with_stale_rpc(grace) -> tenants with a
two-way call still waiting `grace` after its deadline (its caller's process went away), so
the `device-rpc-expiry` job can close it in that tenant's session.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from iiot.migrations.rls import disable_tenant_rls, enable_tenant_rls

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


STALE_RPC_FN = """
create function iiot_tenants_with_stale_rpc(p_grace interval)
returns setof uuid
language sql stable security definer
set search_path = public, pg_temp
as $$
    select distinct r.tenant_id
    from device_rpc r
    where r.status in ('queued', 'delivered') and not r.oneway
      and r.expires_at < now() - p_grace
$$;
revoke all on function iiot_tenants_with_stale_rpc(interval) from public;
"""


def upgrade() -> None:
    op.add_column(
        "devices", sa.Column("is_gateway", sa.Boolean(), server_default="false", nullable=False)
    )
    op.add_column("devices", sa.Column("gateway_id", sa.UUID(), nullable=True))
    op.add_column(
        "devices", sa.Column("disconnected_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_foreign_key(
        "fk_devices_tenant_id_gateway_id_devices",
        "devices",
        "devices",
        ["tenant_id", "gateway_id"],
        ["tenant_id", "id"],
        ondelete="SET NULL (gateway_id)",
    )
    op.create_index(
        "ix_devices_tenant_id_gateway_id_name",
        "devices",
        ["tenant_id", "gateway_id", "name"],
        unique=True,
        postgresql_where=sa.text("gateway_id is not null"),
    )
    op.create_index("ix_devices_tenant_id_name", "devices", ["tenant_id", "name"])

    op.create_table(
        "device_attributes",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("device_id", sa.UUID(), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "scope in ('client','shared','server')", name=op.f("ck_device_attributes_scope_valid")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "device_id"],
            ["devices.tenant_id", "devices.id"],
            name="fk_device_attributes_tenant_id_device_id_devices",
            ondelete="cascade",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "device_id", "scope", "key", name=op.f("pk_device_attributes")
        ),
    )
    enable_tenant_rls("device_attributes")

    op.create_table(
        "device_rpc",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("device_id", sa.UUID(), nullable=False),
        sa.Column("method", sa.String(length=255), nullable=False),
        sa.Column("params", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("oneway", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("status", sa.String(length=16), server_default="queued", nullable=False),
        sa.Column("timeout_ms", sa.Integer(), nullable=False),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("created_by", sa.UUID(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status in ('queued','delivered','successful','timeout','offline')",
            name=op.f("ck_device_rpc_status_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "device_id"],
            ["devices.tenant_id", "devices.id"],
            name="fk_device_rpc_tenant_id_device_id_devices",
            ondelete="cascade",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_device_rpc")),
    )
    op.create_index(
        "ix_device_rpc_tenant_id_device_id_id", "device_rpc", ["tenant_id", "device_id", "id"]
    )
    op.create_index(
        "ix_device_rpc_waiting",
        "device_rpc",
        ["expires_at"],
        postgresql_where=sa.text("status in ('queued','delivered') and not oneway"),
    )
    enable_tenant_rls("device_rpc")
    op.execute(STALE_RPC_FN)


def downgrade() -> None:
    op.execute("drop function if exists iiot_tenants_with_stale_rpc(interval)")
    disable_tenant_rls("device_rpc")
    op.drop_table("device_rpc")
    disable_tenant_rls("device_attributes")
    op.drop_table("device_attributes")
    op.drop_index("ix_devices_tenant_id_name", table_name="devices")
    op.drop_index("ix_devices_tenant_id_gateway_id_name", table_name="devices")
    op.drop_constraint("fk_devices_tenant_id_gateway_id_devices", "devices", type_="foreignkey")
    op.drop_column("devices", "disconnected_at")
    op.drop_column("devices", "gateway_id")
    op.drop_column("devices", "is_gateway")
