"""Telemetry writes, the daily usage counter, and the partition functions.

The write is the hot path, so it skips the ORM and the session: `TelemetryWriter` runs its
own short transaction on a pooled psycopg connection, opened exactly like a tenant session
(`app.tenant_id` set for the transaction, so row-level security applies): three round trips,
BEGIN with the tenant setting, one statement, COMMIT. That statement:

- expands the points from one JSON document of columns (`json_to_record` + `unnest`;
  orjson writes UUIDs and datetimes in C, where adapting Python lists element by element
  costs several times more),
- re-checks the device token's credential (so a token revoked a moment ago is refused even
  if this process's cache has not heard yet) or, for a member, that every device exists,
- inserts with `ON CONFLICT DO NOTHING` (a re-sent point is a no-op, counted as duplicate),
- adds the number actually inserted to `tenant_usage_daily` with one atomic upsert that
  applies only while the sum stays within the day's limit (read in the same statement).

The caller commits only if the credential held, no device was missing and the counter took
the points; otherwise it rolls back, so the counter never overshoots. `COPY` is not an
option: PostgreSQL refuses `COPY FROM` into a table with row-level security.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
from psycopg import AsyncConnection
from psycopg.pq import TransactionStatus
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from iiot.db.repository import SystemRepository, TenantRepository
from iiot.db.session import set_tenant_sql
from iiot.models.telemetry import TenantUsageDaily
from iiot.telemetry.schemas import Rows
from iiot.tenancy.context import TenantContext

_WRITE_HEAD = """
with lim as (
    select coalesce(t.max_telemetry_points_per_day, tr.max_telemetry_points_per_day)::bigint
        as per_day
    from tenants t join tiers tr on tr.name = t.tier
    where t.id = %(tenant_id)s
),
cols as (
    select * from json_to_record(%(columns)s::json) as c(
        d uuid[], k text[], t timestamptz[], n float8[], b bool[], s text[], u text[], q text[]
    )
),
"""
# A device token writes only its own device: its credential row vouches for the device, and
# the device, the credential and the tenant are re-checked here, inside the transaction.
_GUARD_DEVICE = """
guard as (
    select true as ok
    from device_credentials c
    join devices d on d.tenant_id = c.tenant_id and d.id = c.device_id
    join tenants t on t.id = c.tenant_id
    where c.tenant_id = %(tenant_id)s and c.token_hash = %(token_digest)s
      and c.revoked_at is null and d.status <> 'disabled'
      and t.status <> 'suspended' and t.deleted_at is null
),
missing as (select '{}'::uuid[] as ids),
"""
# A member may name any device of the tenant; unknown ones (or another tenant's, invisible
# under row-level security) refuse the whole request.
_GUARD_MEMBER = """
guard as (select true as ok),
missing as (
    select coalesce(array_agg(x.id), '{}') as ids
    from (select distinct unnest(cols.d) as id from cols) x
    where not exists (
        select 1 from devices dv where dv.tenant_id = %(tenant_id)s and dv.id = x.id
    )
),
"""
_WRITE_TAIL = """
ins as (
    insert into telemetry
        (tenant_id, device_id, key, ts, value_num, value_bool, value_str, unit, quality)
    select %(tenant_id)s, u.*
    from cols, unnest(cols.d, cols.k, cols.t, cols.n, cols.b, cols.s, cols.u, cols.q) as u
    where exists (select 1 from guard) and cardinality((select ids from missing)) = 0
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
    (select ids from missing),
    (select inserted from n),
    (select telemetry_points from counted),
    (select per_day from lim),
    (select telemetry_points from tenant_usage_daily
        where tenant_id = %(tenant_id)s and day = %(day)s)
"""
WRITE_AS_DEVICE = _WRITE_HEAD + _GUARD_DEVICE + _WRITE_TAIL
WRITE_AS_MEMBER = _WRITE_HEAD + _GUARD_MEMBER + _WRITE_TAIL

# Many device requests of one tenant as one statement (group commit): every token must still
# be valid (else nothing is written and the group is retried request by request); the rows
# inserted are returned when some were duplicates, so each request learns its own count.
_GUARD_TOKENS = """
digests as (select distinct x.h from unnest(%(token_digests)s::bytea[]) as x(h)),
guard as (
    select true as ok
    where (select count(*) from digests) = (
        select count(*)
        from digests g
        join device_credentials c on c.tenant_id = %(tenant_id)s and c.token_hash = g.h
        join devices d on d.tenant_id = c.tenant_id and d.id = c.device_id
        join tenants t on t.id = c.tenant_id
        where c.revoked_at is null and d.status <> 'disabled'
          and t.status <> 'suspended' and t.deleted_at is null
    )
),
missing as (select '{}'::uuid[] as ids),
"""
WRITE_MERGED = (
    _WRITE_HEAD
    + _GUARD_TOKENS
    + _WRITE_TAIL.replace("    returning 1\n", "    returning device_id, key, ts\n").replace(
        "        where tenant_id = %(tenant_id)s and day = %(day)s)\n",
        "        where tenant_id = %(tenant_id)s and day = %(day)s),\n"
        "    (select array_agg(device_id) from ins where (select inserted from n) < %(total)s),\n"
        "    (select array_agg(key) from ins where (select inserted from n) < %(total)s),\n"
        "    (select array_agg(ts) from ins where (select inserted from n) < %(total)s)\n",
    )
)


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    credential_ok: bool
    missing_devices: list[uuid.UUID]
    inserted: int
    # The counter after this write; None when the write would have crossed the limit.
    counted_total: int | None
    limit: int | None
    # The counter as it stood before this statement (for refusals).
    used_before: int

    @property
    def over_quota(self) -> bool:
        return self.inserted > 0 and self.counted_total is None

    @property
    def accepted(self) -> bool:
        return self.credential_ok and not self.missing_devices and not self.over_quota


def _columns(rows: Rows) -> str:
    return orjson.dumps(
        {
            "d": rows.device_ids,
            "k": rows.keys,
            "t": rows.ts,
            "n": rows.nums,
            "b": rows.bools,
            "s": rows.strs,
            "u": rows.units,
            "q": rows.qualities,
        }
    ).decode()


@dataclass(frozen=True, slots=True)
class PendingWrite:
    """One request's points, as handed to `TelemetryWriter`."""

    ctx: TenantContext
    rows: Rows
    day: date
    token_digest: bytes | None


async def _write_one(conn: AsyncConnection[Any], item: PendingWrite) -> WriteOutcome:
    params = {
        "tenant_id": item.ctx.tenant_id,
        "token_digest": item.token_digest,
        "day": item.day,
        "columns": _columns(item.rows),
    }
    sql = WRITE_AS_DEVICE if item.token_digest is not None else WRITE_AS_MEMBER
    cur = await conn.execute(sql, params)
    row = await cur.fetchone()
    assert row is not None
    return WriteOutcome(
        credential_ok=bool(row[0]),
        missing_devices=list(row[1] or []),
        inserted=int(row[2] or 0),
        counted_total=None if row[3] is None else int(row[3]),
        limit=None if row[4] is None else int(row[4]),
        used_before=int(row[5] or 0),
    )


class TelemetryWriter:
    """Writes requests' points in committed transactions of their own."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @asynccontextmanager
    async def _transaction(self, first_tenant: uuid.UUID) -> AsyncIterator[AsyncConnection[Any]]:
        """A transaction with `app.tenant_id` set; the caller ends it with commit or rollback.

        The connection runs in autocommit mode so that BEGIN and the tenant setting travel as
        one simple query; it is restored before it goes back to the pool.
        """
        async with self.engine.connect() as sa_conn:
            raw = await sa_conn.get_raw_connection()
            conn = raw.driver_connection
            assert isinstance(conn, AsyncConnection)
            await conn.set_autocommit(True)
            try:
                await conn.execute(f"begin; {set_tenant_sql(first_tenant)}".encode())
                yield conn
            except BaseException:
                if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
                    await conn.execute("rollback")
                raise
            finally:
                if not conn.closed:
                    await conn.set_autocommit(False)

    async def write(self, item: PendingWrite) -> WriteOutcome:
        """Insert and count one request; committed when `accepted`, rolled back otherwise."""
        async with self._transaction(item.ctx.tenant_id) as conn:
            outcome = await _write_one(conn, item)
            await conn.execute("commit" if outcome.accepted else "rollback")
        return outcome

    async def write_merged(self, items: list[PendingWrite]) -> list[WriteOutcome] | None:
        """Device requests of one tenant and one day in one statement and one commit.

        All or nothing: None (rolled back) when a token is no longer valid or the rows
        together would cross the quota, so that the caller writes them one by one and each
        gets its own exact answer.
        """
        first = items[0]
        rows = Rows()
        for item in items:
            part = item.rows
            rows.device_ids += part.device_ids
            rows.keys += part.keys
            rows.ts += part.ts
            rows.nums += part.nums
            rows.bools += part.bools
            rows.strs += part.strs
            rows.units += part.units
            rows.qualities += part.qualities
        params = {
            "tenant_id": first.ctx.tenant_id,
            "token_digests": sorted({i.token_digest for i in items if i.token_digest}),
            "day": first.day,
            "columns": _columns(rows),
            "total": len(rows),
        }
        async with self._transaction(first.ctx.tenant_id) as conn:
            cur = await conn.execute(WRITE_MERGED, params)
            row = await cur.fetchone()
            assert row is not None
            inserted = int(row[2] or 0)
            counted = None if row[3] is None else int(row[3])
            if not row[0] or (inserted > 0 and counted is None):
                await conn.execute("rollback")
                return None
            await conn.execute("commit")
        limit = None if row[4] is None else int(row[4])
        used = int(row[5] or 0)
        if inserted == len(rows):
            counts = [len(item.rows) for item in items]
        else:
            # Some rows were already stored: count each request's rows that were inserted.
            fresh = set(zip(row[6] or [], row[7] or [], row[8] or [], strict=True))
            counts = []
            for item in items:
                n = 0
                for key in zip(item.rows.device_ids, item.rows.keys, item.rows.ts, strict=True):
                    if key in fresh:
                        fresh.discard(key)
                        n += 1
                counts.append(n)
        return [WriteOutcome(True, [], n, counted, limit, used) for n in counts]

    async def write_group(self, items: list[PendingWrite]) -> list[WriteOutcome] | None:
        """Several requests in one transaction and one commit (group commit).

        Each request is its own statement, checked against the counter as left by the ones
        before it, so the quota stays exact. A refused request (bad token, unknown device)
        wrote nothing and stays refused; if any request would cross the quota the whole
        group is rolled back and None is returned, so the caller can retry them one by one.
        """
        async with self._transaction(items[0].ctx.tenant_id) as conn:
            tenant = items[0].ctx.tenant_id
            outcomes: list[WriteOutcome] = []
            for item in items:
                if item.ctx.tenant_id != tenant:
                    tenant = item.ctx.tenant_id
                    await conn.execute(set_tenant_sql(tenant).encode())
                outcome = await _write_one(conn, item)
                if outcome.over_quota:
                    await conn.execute("rollback")
                    return None
                outcomes.append(outcome)
            await conn.execute("commit")
        return outcomes


class UsageRepository(TenantRepository[TenantUsageDaily]):
    model = TenantUsageDaily

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
