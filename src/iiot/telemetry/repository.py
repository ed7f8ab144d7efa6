"""Telemetry writes, the daily usage counter, and the partition functions.

The write is one statement on the raw psycopg connection of the tenant session (binary
parameters, no ORM): the points go in through `unnest` of column arrays with
`ON CONFLICT DO NOTHING` (a re-sent point is a no-op and is counted as a duplicate), and the
number actually inserted is added to `tenant_usage_daily` by one atomic upsert that applies
only while the sum stays within the day's limit. If it would cross the limit the upsert
changes nothing, and the caller rolls the whole transaction back. `COPY` is not an option:
PostgreSQL refuses `COPY FROM` into a table with row-level security.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from psycopg import AsyncConnection
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from iiot.db.repository import SystemRepository, TenantRepository
from iiot.models.devices import Device
from iiot.models.telemetry import TenantUsageDaily
from iiot.telemetry.schemas import Rows

# The limit is read inside the statement (tenant override, else its tier's), so a concurrent
# change of the limit cannot be missed between reading and counting.
_WRITE_HEAD = """
with lim as (
    select coalesce(t.max_telemetry_points_per_day, tr.max_telemetry_points_per_day)::bigint
        as per_day
    from tenants t join tiers tr on tr.name = t.tier
    where t.id = %(tenant_id)s
),
"""
_GUARD_DEVICE = """
guard as (
    select true as ok
    from device_credentials c
    join devices d on d.tenant_id = c.tenant_id and d.id = c.device_id
    where c.tenant_id = %(tenant_id)s and c.token_hash = %(token_digest)s
      and c.revoked_at is null and d.status <> 'disabled'
),
"""
_GUARD_NONE = """
guard as (select true as ok),
"""
_WRITE_TAIL = """
ins as (
    insert into telemetry
        (tenant_id, device_id, key, ts, value_num, value_bool, value_str, unit, quality)
    select %(tenant_id)s, u.*
    from unnest(
        %(device_ids)s::uuid[], %(keys)s::text[], %(ts)s::timestamptz[],
        %(nums)s::float8[], %(bools)s::bool[], %(strs)s::text[],
        %(units)s::text[], %(qualities)s::text[]
    ) as u
    where exists (select 1 from guard)
    on conflict do nothing
    returning 1
),
n as (select count(*)::bigint as inserted from ins),
counted as (
    insert into tenant_usage_daily as u (tenant_id, day, telemetry_points)
    select %(tenant_id)s, %(day)s, n.inserted
    from n, lim
    where n.inserted > 0 and (lim.per_day is null or n.inserted <= lim.per_day)
    on conflict (tenant_id, day) do update
        set telemetry_points = u.telemetry_points + excluded.telemetry_points
        where (select per_day from lim) is null
           or u.telemetry_points + excluded.telemetry_points <= (select per_day from lim)
    returning u.telemetry_points
)
select
    exists (select 1 from guard),
    (select inserted from n),
    (select telemetry_points from counted),
    (select per_day from lim),
    (select telemetry_points from tenant_usage_daily
        where tenant_id = %(tenant_id)s and day = %(day)s)
"""
WRITE_AS_DEVICE = _WRITE_HEAD + _GUARD_DEVICE + _WRITE_TAIL
WRITE_AS_MEMBER = _WRITE_HEAD + _GUARD_NONE + _WRITE_TAIL


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    credential_ok: bool
    inserted: int
    # The counter after this write; None when the write would have crossed the limit.
    counted_total: int | None
    limit: int | None
    # The counter as it stood before this statement (for refusals).
    used_before: int

    @property
    def over_quota(self) -> bool:
        return self.inserted > 0 and self.counted_total is None


async def raw_connection(session: AsyncSession) -> AsyncConnection[Any]:
    """The psycopg connection under the session, inside its transaction (tenant already set)."""
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert isinstance(driver, AsyncConnection)
    return driver


class TelemetryWriteRepository(TenantRepository[Any]):
    model = TenantUsageDaily

    async def write(self, rows: Rows, day: date, token_digest: bytes | None) -> WriteOutcome:
        conn = await raw_connection(self.session)
        params = {
            "tenant_id": self.ctx.tenant_id,
            "token_digest": token_digest,
            "day": day,
            "device_ids": rows.device_ids,
            "keys": rows.keys,
            "ts": rows.ts,
            "nums": rows.nums,
            "bools": rows.bools,
            "strs": rows.strs,
            "units": rows.units,
            "qualities": rows.qualities,
        }
        sql = WRITE_AS_DEVICE if token_digest is not None else WRITE_AS_MEMBER
        cur = await conn.execute(sql, params, binary=True)
        row = await cur.fetchone()
        assert row is not None
        return WriteOutcome(
            credential_ok=bool(row[0]),
            inserted=int(row[1] or 0),
            counted_total=None if row[2] is None else int(row[2]),
            limit=None if row[3] is None else int(row[3]),
            used_before=int(row[4] or 0),
        )

    async def existing_devices(self, device_ids: list[uuid.UUID]) -> set[uuid.UUID]:
        found = await self.session.scalars(
            select(Device.id).where(
                Device.tenant_id == self.ctx.tenant_id, Device.id.in_(device_ids)
            )
        )
        return set(found)

    async def points_on(self, day: date) -> int:
        value = await self.session.scalar(
            select(TenantUsageDaily.telemetry_points).where(
                TenantUsageDaily.tenant_id == self.ctx.tenant_id, TenantUsageDaily.day == day
            )
        )
        return int(value or 0)


@dataclass(frozen=True, slots=True)
class LatestPoint:
    key: str
    ts: datetime
    value: float | bool | str | None
    unit: str | None
    quality: str | None


# Keys are found with a skip scan over the primary key (one index probe per key), then the
# newest row of each key is one more probe; cost grows with the number of keys, not of rows.
_LATEST_FOR_DEVICE = text(
    """
    with recursive keys(key) as (
        (select key from telemetry
         where tenant_id = :tenant_id and device_id = :device_id
         order by key limit 1)
        union all
        select (select t.key from telemetry t
                where t.tenant_id = :tenant_id and t.device_id = :device_id and t.key > keys.key
                order by t.key limit 1)
        from keys where keys.key is not null
    )
    select k.key, p.ts, p.value_num, p.value_bool, p.value_str, p.unit, p.quality
    from keys k
    cross join lateral (
        select ts, value_num, value_bool, value_str, unit, quality
        from telemetry t
        where t.tenant_id = :tenant_id and t.device_id = :device_id and t.key = k.key
        order by t.ts desc limit 1
    ) p
    where k.key is not null
    order by k.key
    limit :max_keys
    """
)


class LatestTelemetryRepository(TenantRepository[Any]):
    model = TenantUsageDaily

    async def for_device(self, device_id: uuid.UUID, max_keys: int = 1000) -> list[LatestPoint]:
        rows = await self.session.execute(
            _LATEST_FOR_DEVICE,
            {"tenant_id": self.ctx.tenant_id, "device_id": device_id, "max_keys": max_keys},
        )
        out: list[LatestPoint] = []
        for key, ts, num, flag, txt, unit, quality in rows:
            value: float | bool | str | None = (
                num if num is not None else flag if flag is not None else txt
            )
            out.append(LatestPoint(key, ts, value, unit, quality))
        return out


class PartitionRepository(SystemRepository):
    async def ensure(self, day: date) -> bool:
        created = await self.session.scalar(
            text("select iiot_ensure_telemetry_partition(:day)"), {"day": day}
        )
        return bool(created)

    async def days(self) -> list[date]:
        rows = await self.session.execute(text("select day from iiot_telemetry_partitions()"))
        return [r[0] for r in rows]

    async def drop(self, day: date) -> bool:
        dropped = await self.session.scalar(
            text("select iiot_drop_telemetry_partition(:day)"), {"day": day}
        )
        return bool(dropped)
