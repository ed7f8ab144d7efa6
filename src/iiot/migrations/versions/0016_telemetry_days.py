"""telemetry: the days holding each tenant's points, kept by triggers; a caller's membership

Revision ID: 0016
Revises: 0015

`telemetry_days (tenant_id, day)` lists exactly the UTC days on which a tenant has at least
one stored point, so the tenant's oldest day with data is one index probe
(`oldest_data_age_days` of the quotas) instead of a probe of every day partition before it.

Two statement-level triggers on `telemetry` keep it, with the changed rows as a transition
table:

- after INSERT (or COPY): each `(tenant, day)` of the statement is added if absent. A batch
  carries one or two days of one tenant, so this is one `ON CONFLICT DO NOTHING` probe per
  day, never a write once the day is known.
- after DELETE (retention, the points of a removed device, a purged tenant): each
  `(tenant, day)` of the deleted rows is removed unless a point of the tenant is still
  stored on that day.

A delete and a concurrent insert on the same day must not leave a day with points unlisted:
the insert trigger takes a shared and the delete trigger an exclusive transaction-level
advisory lock on the tenant, so the delete's check (a fresh snapshot, taken once the lock is
held) sees every insert that listed the day before it, and an insert that comes after the
delete's commit finds the day gone and lists it again.

Dropped partitions fire no trigger: the retention job removes each tenant's days before its
cutoff (`iiot.telemetry.retention`). The functions are SECURITY DEFINER and write each
tenant's rows under that tenant's setting (restored afterwards), as the removed-series
trigger of 0013 does, so the tenant policy holds whoever writes. Existing points are listed
once here, a loose index scan per day partition (and a plain scan of DEFAULT).

`iiot_user_memberships_in_tenant(user, tenant)`: the user's membership (role, status) of one
tenant, the SECURITY DEFINER look-up that resolves every caller. It reads what
`iiot_user_memberships(user)` reads, for one tenant, in PL/pgSQL: its statement is planned
once per connection, where an SQL function that cannot be inlined (a SECURITY DEFINER one
cannot) is parsed and planned again on every run of the statement that calls it.

`iiot_telemetry_oldest_day` (0015), the partition probe the quotas used before, is dropped.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from alembic import op

from iiot.migrations.rls import disable_tenant_rls, enable_tenant_rls

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CREATE_TABLE = """
create table telemetry_days (
    tenant_id uuid not null,
    day date not null,
    constraint pk_telemetry_days primary key (tenant_id, day),
    constraint fk_telemetry_days_tenant_id_tenants foreign key (tenant_id)
        references tenants (id) on delete cascade
)
"""

# 1952539001: the advisory lock space of these triggers (one lock per tenant inside it).
TRIGGERS = """
create function iiot_telemetry_days_added()
returns trigger
language plpgsql security definer
set search_path = public, pg_temp
as $$
declare
    saved text := current_setting('app.tenant_id', true);
    r record;
begin
    for r in
        select distinct a.tenant_id, (a.ts at time zone 'UTC')::date as day
        from added a
        order by 1, 2
    loop
        perform pg_advisory_xact_lock_shared(1952539001, hashtext(r.tenant_id::text));
        perform set_config('app.tenant_id', r.tenant_id::text, true);
        insert into telemetry_days (tenant_id, day) values (r.tenant_id, r.day)
        on conflict do nothing;
    end loop;
    perform set_config('app.tenant_id', coalesce(saved, ''), true);
    return null;
end
$$;
revoke all on function iiot_telemetry_days_added() from public;
create trigger telemetry_days_added
    after insert on telemetry
    referencing new table as added
    for each statement execute function iiot_telemetry_days_added();

create function iiot_telemetry_days_removed()
returns trigger
language plpgsql security definer
set search_path = public, pg_temp
as $$
declare
    saved text := current_setting('app.tenant_id', true);
    r record;
begin
    for r in
        select distinct g.tenant_id, (g.ts at time zone 'UTC')::date as day
        from gone g
        order by 1, 2
    loop
        perform pg_advisory_xact_lock(1952539001, hashtext(r.tenant_id::text));
        perform set_config('app.tenant_id', r.tenant_id::text, true);
        delete from telemetry_days d
        where d.tenant_id = r.tenant_id and d.day = r.day
          and not exists (
              select 1 from telemetry t
              where t.tenant_id = r.tenant_id
                and t.ts >= r.day::timestamp at time zone 'UTC'
                and t.ts < (r.day + 1)::timestamp at time zone 'UTC'
          );
    end loop;
    perform set_config('app.tenant_id', coalesce(saved, ''), true);
    return null;
end
$$;
revoke all on function iiot_telemetry_days_removed() from public;
create trigger telemetry_days_removed
    after delete on telemetry
    referencing old table as gone
    for each statement execute function iiot_telemetry_days_removed();
"""

MEMBERSHIP_FN = """
create function iiot_user_memberships_in_tenant(p_user_id uuid, p_tenant_id uuid)
returns table (role text, status text)
language plpgsql stable security definer
set search_path = public, pg_temp
as $$
begin
    return query
    select m.role::text, m.status::text
    from memberships m
    where m.user_id = p_user_id and m.tenant_id = p_tenant_id;
end
$$;
revoke all on function iiot_user_memberships_in_tenant(uuid, uuid) from public;
"""

# The points already stored: each day partition's tenants by a loose scan of its primary key
# (tenant first), DEFAULT's by a plain scan. Each partition is read directly, so its own
# row-level security is lifted for the owner meanwhile (partitions force it like their
# parent), as 0013 does to move the points.
BACKFILL = """
do $$
declare
    part record;
begin
    for part in
        select c.relname::text as name
        from pg_inherits i join pg_class c on c.oid = i.inhrelid
        where i.inhparent = 'public.telemetry'::regclass
        order by c.relname
    loop
        execute format('alter table %I no force row level security', part.name);
        if part.name ~ '^telemetry_p[0-9]{8}$' then
            execute format(
                'insert into telemetry_days (tenant_id, day) '
                'with recursive t(id) as ('
                '  (select tenant_id from %1$I order by tenant_id limit 1)'
                '  union all'
                '  select (select p.tenant_id from %1$I p where p.tenant_id > t.id'
                '          order by p.tenant_id limit 1)'
                '  from t where t.id is not null'
                ') '
                'select t.id, %2$L::date from t where t.id is not null '
                'on conflict do nothing',
                part.name, to_date(substr(part.name, 12, 8), 'YYYYMMDD'));
        else
            execute format(
                'insert into telemetry_days (tenant_id, day) '
                'select distinct tenant_id, (ts at time zone ''UTC'')::date from %I '
                'on conflict do nothing',
                part.name);
        end if;
        execute format('alter table %I force row level security', part.name);
    end loop;
end
$$;
"""


def upgrade() -> None:
    op.execute(CREATE_TABLE)
    op.execute(BACKFILL)
    enable_tenant_rls("telemetry_days")
    op.execute(TRIGGERS)
    op.execute(MEMBERSHIP_FN)
    op.execute("drop function iiot_telemetry_oldest_day(uuid, date, date)")


def downgrade() -> None:
    oldest_day = importlib.import_module("iiot.migrations.versions.0015_oldest_data_day")
    op.execute(oldest_day.UPGRADE)
    op.execute("drop function if exists iiot_user_memberships_in_tenant(uuid, uuid)")
    op.execute("drop trigger if exists telemetry_days_removed on telemetry")
    op.execute("drop trigger if exists telemetry_days_added on telemetry")
    op.execute("drop function if exists iiot_telemetry_days_removed()")
    op.execute("drop function if exists iiot_telemetry_days_added()")
    disable_tenant_rls("telemetry_days")
    op.execute("drop table telemetry_days")
