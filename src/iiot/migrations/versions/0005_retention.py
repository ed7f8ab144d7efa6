"""telemetry retention: dropping wholly expired daily partitions

Revision ID: 0005
Revises: 0004

The application role owns no table, so it cannot drop a partition. This narrow SECURITY
DEFINER function does it with the owner's rights, and takes no argument: it computes the cutoff
itself from the longest effective `max_retention_days` of all tenants (a tenant's own value
over its tier's; any unlimited tenant means nothing is dropped). Whoever calls it can therefore
only remove partitions whose every row has expired for every tenant.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Partition telemetry_pYYYYMMDD holds [YYYY-MM-DD 00:00 UTC, next day 00:00 UTC). It is wholly
# expired when that end lies at or before now - longest window, i.e. when its day is before the
# UTC date of (now - longest window).
DROP_EXPIRED_PARTITIONS_FN = """
create function iiot_drop_expired_telemetry_partitions()
returns setof text
language plpgsql volatile security definer
set search_path = public, pg_temp
set lock_timeout = '5s'
as $$
declare
    any_unlimited boolean;
    longest integer;
    cutoff date;
    part record;
begin
    select bool_or(w.days is null), max(w.days) into any_unlimited, longest
    from (
        select coalesce(t.max_retention_days, tr.max_retention_days) as days
        from tenants t left join tiers tr on tr.name = t.tier
    ) w;
    if any_unlimited is distinct from false or longest is null then
        return;
    end if;
    cutoff := (now() at time zone 'UTC')::date - longest;
    for part in
        select c.relname::text as name, to_date(substr(c.relname, 12, 8), 'YYYYMMDD') as day
        from pg_inherits i
        join pg_class c on c.oid = i.inhrelid
        where i.inhparent = 'public.telemetry'::regclass
          and c.relname ~ '^telemetry_p[0-9]{8}$'
        order by c.relname
    loop
        exit when part.day >= cutoff;
        execute format('drop table %I', part.name);
        return next part.name;
    end loop;
end
$$;
revoke all on function iiot_drop_expired_telemetry_partitions() from public;
"""


def upgrade() -> None:
    op.execute(DROP_EXPIRED_PARTITIONS_FN)


def downgrade() -> None:
    op.execute("drop function if exists iiot_drop_expired_telemetry_partitions()")
