"""telemetry: the tenant's oldest day with data, probed one day partition at a time

Revision ID: 0015
Revises: 0014

`iiot_telemetry_oldest_day(tenant, today, from)` is the first day, in date order, from `from`
(NULL: no lower bound) to `today`, that has a daily partition of `telemetry` holding a point
of the tenant; NULL when there is none. It walks the partitions' names through the catalog's
name index (`telemetry_pYYYYMMDD` sorts by date) and stops at the first hit, so its cost
depends on the days it probes, not on how many partitions exist. Each probe is planned with
its bounds known, so it opens and locks that day's partition only (a statement over the
whole range, prepared once, would lock every partition and index on each run).

The function runs as the caller (security invoker): the probes read `telemetry` under the
caller's tenant setting, so row-level security applies as to any other read.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE = """
create function iiot_telemetry_oldest_day(p_tenant uuid, p_today date, p_from date)
returns date
language plpgsql
stable
set search_path = public, pg_catalog, pg_temp
as $$
declare
    part record;
    p_day date;
    hit boolean;
begin
    for part in
        select c.relname
        from pg_class c
        where c.relname >= ('telemetry_p' || coalesce(to_char(p_from, 'YYYYMMDD'), ''))::name
          and c.relname <= ('telemetry_p' || to_char(p_today, 'YYYYMMDD'))::name
          and c.relnamespace = 'public'::regnamespace
          and c.relname ~ '^telemetry_p[0-9]{8}$'
          and exists (
              select 1 from pg_inherits i
              where i.inhrelid = c.oid and i.inhparent = 'public.telemetry'::regclass
          )
        order by c.relname
    loop
        p_day := to_date(substr(part.relname, 12, 8), 'YYYYMMDD');
        execute 'select exists (select 1 from telemetry'
                ' where tenant_id = $1 and ts >= $2 and ts < $3)'
            into hit
            using p_tenant,
                  p_day::timestamp at time zone 'UTC',
                  (p_day + 1)::timestamp at time zone 'UTC';
        if hit then
            return p_day;
        end if;
    end loop;
    return null;
end
$$;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute("drop function if exists iiot_telemetry_oldest_day(uuid, date, date)")
