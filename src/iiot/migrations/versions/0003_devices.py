"""devices and telemetry

Revision ID: 0003
Revises: 0002

Tenant-owned tables here: devices, device_credentials, telemetry (partitioned), and
tenant_usage_daily (RLS enabled and forced on each; on telemetry also on every partition, so
that a partition reached by its own name shows nothing either).

`telemetry.key` uses the "C" collation: keys are identifiers, and byte-order comparisons make
the primary-key index on every insert markedly cheaper than a linguistic collation.

`telemetry` is RANGE-partitioned by `ts` into UTC days (`telemetry_pYYYYMMDD`) plus a DEFAULT
partition that only catches a day whose partition could not be created in time. Ingest stays
cheap (each partition's index is small and hot) and retention drops whole partitions.

Narrow SECURITY DEFINER functions (the application role owns no table):
- iiot_device_by_token(digest) -> (tenant_id, device_id, device_status, tenant_status): the
  device credential look-up at ingest, across tenants.
- iiot_ensure_telemetry_partition(day) -> created?: creates one day's partition.
- iiot_telemetry_partitions() -> (name, day): the daily partitions.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from iiot.migrations.rls import TENANT_PREDICATE, disable_tenant_rls, enable_tenant_rls

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Days of partitions created around the migration's date; the partition job keeps ahead.
PAST_DAYS = 7
FUTURE_DAYS = 7

DEVICE_BY_TOKEN_FN = """
create function iiot_device_by_token(p_digest bytea)
returns table (tenant_id uuid, device_id uuid, device_status text, tenant_status text)
language sql stable security definer
set search_path = public, pg_temp
as $$
    select c.tenant_id, c.device_id, d.status::text, t.status::text
    from device_credentials c
    join devices d on d.tenant_id = c.tenant_id and d.id = c.device_id
    join tenants t on t.id = c.tenant_id
    where c.token_hash = p_digest and c.revoked_at is null and t.deleted_at is null
$$;
revoke all on function iiot_device_by_token(bytea) from public;
"""  # noqa: S105

# The tenant predicate quoted for a string literal inside the function body.
_PREDICATE_LITERAL = TENANT_PREDICATE.replace("'", "''")

ENSURE_PARTITION_FN = f"""
create function iiot_ensure_telemetry_partition(p_day date)
returns boolean
language plpgsql volatile security definer
set search_path = public, pg_temp
as $$
declare
    part text := 'telemetry_p' || to_char(p_day, 'YYYYMMDD');
    grant_row record;
begin
    if to_regclass(part) is not null then
        return false;
    end if;
    -- Serialise creators; a concurrent one may have created it meanwhile.
    perform pg_advisory_xact_lock(727275);
    if to_regclass(part) is not null then
        return false;
    end if;
    -- A day that already has rows in the DEFAULT partition keeps them there.
    if exists (
        select 1 from telemetry_default
        where ts >= p_day::timestamp at time zone 'UTC'
          and ts < (p_day + 1)::timestamp at time zone 'UTC'
        limit 1
    ) then
        return false;
    end if;
    execute format(
        'create table %I partition of telemetry for values from (%L) to (%L)',
        part,
        (p_day::timestamp at time zone 'UTC'),
        ((p_day + 1)::timestamp at time zone 'UTC')
    );
    -- The same grants as the parent, so a partition behaves like one made by the migration.
    for grant_row in
        select g.grantee, g.privilege_type
        from information_schema.role_table_grants g
        where g.table_schema = 'public' and g.table_name = 'telemetry'
          and g.grantee not in (current_user, 'PUBLIC')
    loop
        execute format('grant %s on %I to %I', grant_row.privilege_type, part, grant_row.grantee);
    end loop;
    execute format('alter table %I enable row level security', part);
    execute format('alter table %I force row level security', part);
    execute format(
        'create policy tenant_isolation on %I using ({_PREDICATE_LITERAL}) '
        'with check ({_PREDICATE_LITERAL})',
        part
    );
    return true;
end
$$;
revoke all on function iiot_ensure_telemetry_partition(date) from public;
"""  # noqa: S608

LIST_PARTITIONS_FN = """
create function iiot_telemetry_partitions()
returns table (name text, day date)
language sql stable security definer
set search_path = public, pg_temp
as $$
    select c.relname::text, to_date(substr(c.relname, 12), 'YYYYMMDD')
    from pg_inherits i
    join pg_class c on c.oid = i.inhrelid
    where i.inhparent = 'telemetry'::regclass and c.relname ~ '^telemetry_p[0-9]{8}$'
    order by 2
$$;
revoke all on function iiot_telemetry_partitions() from public;
"""


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=True),
        sa.Column("location", sa.String(length=200), nullable=True),
        sa.Column("area", sa.String(length=100), nullable=True),
        sa.Column("protocol", sa.String(length=32), nullable=True),
        sa.Column(
            "config",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), server_default="offline", nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
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
            "status in ('online','offline','disabled')", name=op.f("ck_devices_status_valid")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_devices_tenant_id_tenants"),
            ondelete="cascade",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_devices")),
    )
    op.create_index("ix_devices_tenant_id_type", "devices", ["tenant_id", "type"])
    op.create_index("ix_devices_tenant_id_area", "devices", ["tenant_id", "area"])
    op.create_index("ix_devices_tenant_id_status", "devices", ["tenant_id", "status"])
    enable_tenant_rls("devices")

    op.create_table(
        "device_credentials",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("device_id", sa.UUID(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id", "device_id"],
            ["devices.tenant_id", "devices.id"],
            name="fk_device_credentials_tenant_id_device_id_devices",
            ondelete="cascade",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_device_credentials")),
    )
    op.create_index(
        "ix_device_credentials_token_hash", "device_credentials", ["token_hash"], unique=True
    )
    op.create_index(
        "ix_device_credentials_tenant_id_device_id",
        "device_credentials",
        ["tenant_id", "device_id"],
    )
    enable_tenant_rls("device_credentials")

    op.execute(
        """
        create table telemetry (
            tenant_id uuid not null,
            device_id uuid not null,
            key text collate "C" not null,
            ts timestamptz not null,
            value_num double precision,
            value_bool boolean,
            value_str text,
            unit text,
            quality text,
            constraint pk_telemetry primary key (tenant_id, device_id, key, ts),
            constraint fk_telemetry_tenant_id_device_id_devices
                foreign key (tenant_id, device_id) references devices (tenant_id, id)
                on delete cascade
        ) partition by range (ts)
        """
    )
    enable_tenant_rls("telemetry")
    op.execute("create table telemetry_default partition of telemetry default")
    enable_tenant_rls("telemetry_default")
    op.execute(ENSURE_PARTITION_FN)
    op.execute(LIST_PARTITIONS_FN)
    op.execute(
        f"""
        select iiot_ensure_telemetry_partition(d::date)
        from generate_series(
            (now() at time zone 'UTC')::date - {PAST_DAYS},
            (now() at time zone 'UTC')::date + {FUTURE_DAYS},
            interval '1 day'
        ) d
        """  # noqa: S608
    )

    op.create_table(
        "tenant_usage_daily",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("telemetry_points", sa.BigInteger(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_tenant_usage_daily_tenant_id_tenants"),
            ondelete="cascade",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "day", name=op.f("pk_tenant_usage_daily")),
    )
    enable_tenant_rls("tenant_usage_daily")

    op.execute(DEVICE_BY_TOKEN_FN)


def downgrade() -> None:
    op.execute("drop function if exists iiot_device_by_token(bytea)")
    op.execute("drop function if exists iiot_telemetry_partitions()")
    op.execute("drop function if exists iiot_ensure_telemetry_partition(date)")
    disable_tenant_rls("tenant_usage_daily")
    op.drop_table("tenant_usage_daily")
    op.execute("drop table telemetry")
    disable_tenant_rls("device_credentials")
    op.drop_table("device_credentials")
    disable_tenant_rls("devices")
    op.drop_table("devices")
