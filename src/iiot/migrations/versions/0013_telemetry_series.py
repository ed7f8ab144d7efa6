"""telemetry: a per-tenant series dictionary and narrow points

Revision ID: 0013
Revises: 0009

Points were keyed by `(tenant_id, device_id, key, ts)` with a foreign key to `devices` on
every row: each insert paid a foreign-key check (a trigger and an index probe into `devices`)
and a wide index entry (two UUIDs, a text key and a timestamp). Now:

- `telemetry_series (tenant_id, id, device_id, key)` names each `(device, key)` of a tenant
  once; `id` is a global identity (never reused), unique per `(tenant_id, device_id, key)`,
  and the series row carries the foreign key to `devices` (cascading deletes).
- `telemetry (tenant_id, series_id, ts, value_num, value_bool, value_str, unit, quality)`,
  primary key `(tenant_id, series_id, ts)`, daily RANGE partitions as before, row-level
  security as before, and no foreign key: ingest locks the batch's devices once per
  transaction instead (`FOR KEY SHARE`), and a removed device's points are deleted later, a
  partition at a time, by the `telemetry-removed-series` job.
- `telemetry_series_removed (tenant_id, series_id)`: the series whose points still have to be
  deleted. An AFTER DELETE trigger on `telemetry_series` fills it (also when the delete
  cascades from a device or a tenant), with the tenant setting of each removed series, so the
  row satisfies the table's tenant policy whoever deletes.
- `iiot_telemetry_removed_series_tenants()`: the tenants with removed series (a purged tenant
  is no longer in `tenants`, so the job cannot find them otherwise).

Durable rule evaluation:

- `rule_batches (tenant_id, id, points, attempts, last_error, parked_at)`: the ingest
  statement writes one row per accepted batch of a tenant that has enabled telemetry rules,
  in the ingest transaction (so an acknowledged batch is never lost); the rules engine
  evaluates it and deletes it in one transaction (so it is never evaluated twice). A batch
  that keeps failing is parked (`parked_at`), visible to the tenant's admins.
- `iiot_rule_batch_tenants(p_older_than)`: tenants with unparked batches waiting longer than
  `p_older_than` (the sweep that catches batches of a process that died).

Every existing point is moved: the series are created from the distinct `(tenant, device,
key)` of the old table, each old day partition gets its new partition, and the points are
copied through the dictionary. Row-level security is relaxed for the owner (NO FORCE) only
while it moves the rows.
"""

from collections.abc import Sequence

from alembic import op

from iiot.migrations.rls import disable_tenant_rls, enable_tenant_rls

revision: str = "0013"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_PARTITIONS = """
select c.relname::text as name
from pg_inherits i join pg_class c on c.oid = i.inhrelid
where i.inhparent = '{parent}'::regclass
"""

RENAME_OLD = f"""
do $$
declare
    part record;
    idx record;
begin
    alter table telemetry rename to telemetry_wide;
    alter index pk_telemetry rename to pk_telemetry_wide;
    for part in {_OLD_PARTITIONS.format(parent="telemetry_wide")} loop
        execute format('alter table %I rename to %I', part.name, 'wide_' || part.name);
        -- Its index names too, so the new partitions' indexes get the usual names.
        for idx in
            select c.relname::text as name from pg_index i join pg_class c on c.oid = i.indexrelid
            where i.indrelid = format('%I', 'wide_' || part.name)::regclass
        loop
            execute format('alter index %I rename to %I', idx.name, 'wide_' || idx.name);
        end loop;
    end loop;
end
$$;
"""  # noqa: S608

# Move the rows with RLS not forced on the owner (it applies to the application role anyway).
UNFORCE_OLD = f"""
do $$
declare
    part record;
begin
    alter table telemetry_wide no force row level security;
    for part in {_OLD_PARTITIONS.format(parent="telemetry_wide")} loop
        execute format('alter table %I no force row level security', part.name);
    end loop;
end
$$;
"""

CREATE_POINTS = """
create table telemetry (
    tenant_id uuid not null,
    series_id bigint not null,
    ts timestamptz not null,
    value_num double precision,
    value_bool boolean,
    value_str text,
    unit text,
    quality text,
    constraint pk_telemetry primary key (tenant_id, series_id, ts)
) partition by range (ts)
"""

CREATE_SERIES = """
create table telemetry_series (
    tenant_id uuid not null,
    id bigint generated always as identity,
    device_id uuid not null,
    key text collate "C" not null,
    constraint pk_telemetry_series primary key (tenant_id, id),
    constraint uq_telemetry_series_tenant_id_device_id_key unique (tenant_id, device_id, key),
    constraint fk_telemetry_series_tenant_id_device_id_devices
        foreign key (tenant_id, device_id) references devices (tenant_id, id) on delete cascade
)
"""

CREATE_REMOVED = """
create table telemetry_series_removed (
    tenant_id uuid not null,
    series_id bigint not null,
    removed_at timestamptz not null default now(),
    constraint pk_telemetry_series_removed primary key (tenant_id, series_id)
)
"""

# Statement-level, with the removed rows as a transition table: one insert per tenant per
# statement. Each tenant's rows are written under that tenant's setting (restored afterwards),
# so the tenant policy holds for whoever deleted (a tenant session, or the purge of a tenant
# by a system session, where the delete cascades from `tenants`).
REMOVED_TRIGGER = """
create function iiot_telemetry_series_removed()
returns trigger
language plpgsql security definer
set search_path = public, pg_temp
as $$
declare
    saved text := current_setting('app.tenant_id', true);
    tenant uuid;
begin
    for tenant in select distinct g.tenant_id from gone g loop
        perform set_config('app.tenant_id', tenant::text, true);
        insert into telemetry_series_removed (tenant_id, series_id)
        select g.tenant_id, g.id from gone g where g.tenant_id = tenant
        on conflict do nothing;
    end loop;
    perform set_config('app.tenant_id', coalesce(saved, ''), true);
    return null;
end
$$;
revoke all on function iiot_telemetry_series_removed() from public;
create trigger telemetry_series_removed
    after delete on telemetry_series
    referencing old table as gone
    for each statement execute function iiot_telemetry_series_removed();
"""

REMOVED_TENANTS_FN = """
create function iiot_telemetry_removed_series_tenants()
returns setof uuid
language sql stable security definer
set search_path = public, pg_temp
as $$
    select distinct tenant_id from telemetry_series_removed
$$;
revoke all on function iiot_telemetry_removed_series_tenants() from public;
"""

CREATE_RULE_BATCHES = """
create table rule_batches (
    tenant_id uuid not null,
    id bigint generated always as identity,
    points json not null,
    created_at timestamptz not null default now(),
    attempts integer not null default 0,
    last_error text,
    parked_at timestamptz,
    constraint pk_rule_batches primary key (tenant_id, id),
    constraint fk_rule_batches_tenant_id_tenants
        foreign key (tenant_id) references tenants (id) on delete cascade
)
"""

RULE_BATCH_TENANTS_FN = """
create function iiot_rule_batch_tenants(p_older_than interval)
returns setof uuid
language sql stable security definer
set search_path = public, pg_temp
as $$
    select distinct tenant_id from rule_batches
    where parked_at is null and created_at <= now() - p_older_than
$$;
revoke all on function iiot_rule_batch_tenants(interval) from public;
"""

MOVE_POINTS = f"""
do $$
declare
    part record;
begin
    -- Every day that had a partition gets one again (the function names them by day).
    for part in {_OLD_PARTITIONS.format(parent="telemetry_wide")} loop
        if part.name ~ '^wide_telemetry_p[0-9]{{8}}$' then
            perform iiot_ensure_telemetry_partition(to_date(substr(part.name, 17, 8), 'YYYYMMDD'));
        end if;
    end loop;
end
$$;
alter table telemetry no force row level security;
alter table telemetry_series no force row level security;
insert into telemetry_series (tenant_id, device_id, key)
select distinct w.tenant_id, w.device_id, w.key from telemetry_wide w
order by 1, 2, 3;
insert into telemetry (tenant_id, series_id, ts, value_num, value_bool, value_str, unit, quality)
select w.tenant_id, s.id, w.ts, w.value_num, w.value_bool, w.value_str, w.unit, w.quality
from telemetry_wide w
join telemetry_series s
  on s.tenant_id = w.tenant_id and s.device_id = w.device_id and s.key = w.key;
alter table telemetry force row level security;
alter table telemetry_series force row level security;
drop table telemetry_wide;
"""  # noqa: S608


def upgrade() -> None:
    op.execute(RENAME_OLD)
    op.execute(UNFORCE_OLD)
    op.execute(CREATE_POINTS)
    enable_tenant_rls("telemetry")
    op.execute("create table telemetry_default partition of telemetry default")
    enable_tenant_rls("telemetry_default")
    op.execute(CREATE_SERIES)
    enable_tenant_rls("telemetry_series")
    op.execute(CREATE_REMOVED)
    enable_tenant_rls("telemetry_series_removed")
    op.execute(REMOVED_TRIGGER)
    op.execute(REMOVED_TENANTS_FN)
    op.execute(CREATE_RULE_BATCHES)
    enable_tenant_rls("rule_batches")
    op.execute(RULE_BATCH_TENANTS_FN)
    op.execute(MOVE_POINTS)
    # The points of the days around now always have their partition.
    op.execute(
        """
        select iiot_ensure_telemetry_partition(d::date)
        from generate_series(
            (now() at time zone 'UTC')::date - 7,
            (now() at time zone 'UTC')::date + 7,
            interval '1 day'
        ) d
        """
    )


DOWNGRADE = f"""
alter table telemetry rename to telemetry_narrow;
alter index pk_telemetry rename to pk_telemetry_narrow;
do $$
declare
    part record;
begin
    for part in {_OLD_PARTITIONS.format(parent="telemetry_narrow")} loop
        execute format('alter table %I rename to %I', part.name, 'narrow_' || part.name);
    end loop;
end
$$;
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
) partition by range (ts);
"""

DOWNGRADE_MOVE = f"""
do $$
declare
    part record;
begin
    for part in {_OLD_PARTITIONS.format(parent="telemetry_narrow")} loop
        if part.name ~ '^narrow_telemetry_p[0-9]{{8}}$' then
            perform iiot_ensure_telemetry_partition(to_date(substr(part.name, 19, 8), 'YYYYMMDD'));
        end if;
    end loop;
end
$$;
alter table telemetry no force row level security;
alter table telemetry_narrow no force row level security;
alter table telemetry_series no force row level security;
insert into telemetry
select p.tenant_id, s.device_id, s.key, p.ts, p.value_num, p.value_bool, p.value_str,
       p.unit, p.quality
from telemetry_narrow p
join telemetry_series s on s.tenant_id = p.tenant_id and s.id = p.series_id;
alter table telemetry force row level security;
drop table telemetry_narrow;
"""  # noqa: S608


def downgrade() -> None:
    op.execute("drop function if exists iiot_rule_batch_tenants(interval)")
    disable_tenant_rls("rule_batches")
    op.execute("drop table rule_batches")
    op.execute("drop function if exists iiot_telemetry_removed_series_tenants()")
    op.execute(DOWNGRADE)
    enable_tenant_rls("telemetry")
    op.execute("create table telemetry_default partition of telemetry default")
    enable_tenant_rls("telemetry_default")
    op.execute(DOWNGRADE_MOVE)
    op.execute("drop trigger if exists telemetry_series_removed on telemetry_series")
    op.execute("drop function if exists iiot_telemetry_series_removed()")
    disable_tenant_rls("telemetry_series_removed")
    op.execute("drop table telemetry_series_removed")
    disable_tenant_rls("telemetry_series")
    op.execute("drop table telemetry_series")
