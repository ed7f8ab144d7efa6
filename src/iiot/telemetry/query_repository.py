"""SQL of telemetry reads and retention.

Every statement on `telemetry` names `tenant_id = :tenant_id` (the context's tenant) and a
bounded time range or a primary-key prefix, so that PostgreSQL prunes partitions and walks the
primary key `(tenant_id, series_id, ts)` instead of scanning; a `(device, key)` becomes its
series id through the `telemetry_series` dictionary. Row-level security applies
the same tenant filter again underneath.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    CursorResult,
    Date,
    Integer,
    TextClause,
    column,
    select,
    text,
    type_coerce,
)

from iiot.db.repository import SystemRepository, TenantRepository
from iiot.models.devices import Device
from iiot.models.telemetry import TelemetryPoint

# Only constant fragments are formatted in (the optional key and cursor conditions). The
# device's series come from the dictionary; each is a primary-key range of the partitions.
_RAW = """
select s.device_id, s.key, t.ts, t.value_num, t.value_bool, t.value_str, t.unit, t.quality
from telemetry_series s
join telemetry t on t.tenant_id = s.tenant_id and t.series_id = s.id
where s.tenant_id = :tenant_id and s.device_id = :device_id
  and t.tenant_id = :tenant_id
  and t.ts >= :start and t.ts < :end
  {key_filter} {after_filter}
order by t.ts desc, s.key desc
limit :limit
"""

# The device's series in key order, then the newest point of each by a backward primary-key
# probe: cost follows the number of keys, not the number of stored points. A series without
# points (all expired) is left out.
_LATEST_FOR_DEVICE = text("""
select s.device_id, s.key, t.ts, t.value_num, t.value_bool, t.value_str, t.unit, t.quality
from telemetry_series s
cross join lateral (
    select * from telemetry t
    where t.tenant_id = :tenant_id and t.series_id = s.id
    order by t.ts desc limit 1
) t
where s.tenant_id = :tenant_id and s.device_id = :device_id
order by s.key
limit :limit
""")

# The same over every (device, key) series of the tenant in (device, key) order, stopped after
# `limit` series that hold points.
_LATEST_FOR_TENANT = text("""
select s.device_id, s.key, t.ts, t.value_num, t.value_bool, t.value_str, t.unit, t.quality
from telemetry_series s
cross join lateral (
    select * from telemetry t
    where t.tenant_id = :tenant_id and t.series_id = s.id
    order by t.ts desc limit 1
) t
where s.tenant_id = :tenant_id
order by s.device_id, s.key
limit :limit
""")

# One series, by its (device, key): a single dictionary probe ahead of the range scan.
_SERIES_ID = """(
    select s.id from telemetry_series s
    where s.tenant_id = :tenant_id and s.device_id = :device_id and s.key = :key
)"""

_AGGREGATE_FUNCTIONS = {"avg": "avg", "min": "min", "max": "max", "sum": "sum", "count": "count"}

# Buckets are aligned on the Unix epoch in absolute time, so they do not depend on the
# session's time zone: a 1d bucket starts at 00:00 UTC. The database renders the buckets as
# a JSON array itself: up to 10,000 buckets would otherwise cost more in Python objects than
# the aggregation does. Bucket starts are whole seconds (intervals are whole seconds).
_AGGREGATE_JSON = """
select coalesce(
    json_agg(
        json_build_object(
            'ts', to_char(b.bucket at time zone 'UTC', 'YYYY-MM-DD"T"HH24\\:MI\\:SS"Z"'),
            'value', b.value,
            'count', b.n
        )
        order by b.bucket
    ),
    '[]'
)::text
from (
    select date_bin(:width, t.ts, timestamptz '1970-01-01 00:00:00+00') as bucket,
           {fn}(t.value_num)::double precision as value,
           count(*) as n
    from telemetry t
    where t.tenant_id = :tenant_id and t.series_id = {series}
      and t.ts >= :start and t.ts < :end and t.value_num is not null
    group by 1
) b
"""


def aggregate_statement(fn: str) -> TextClause:
    """The aggregate query for one of the allowed functions (the only text formatted in)."""
    return text(
        _AGGREGATE_JSON.format(fn=_AGGREGATE_FUNCTIONS[fn], series=_SERIES_ID)  # noqa: S608
    )


_STATISTICS = text(
    f"""
select count(t.value_num) as n,
       avg(t.value_num) as mean,
       min(t.value_num) as min,
       max(t.value_num) as max,
       stddev_samp(t.value_num) as stddev,
       percentile_cont(array[0.5, 0.9, 0.95, 0.99]) within group (order by t.value_num) as pct
from telemetry t
where t.tenant_id = :tenant_id and t.series_id = {_SERIES_ID}
  and t.ts >= :start and t.ts < :end and t.value_num is not null
"""  # noqa: S608
)

# The tenant's oldest day with data inside its retention window (its own max_retention_days,
# else its tier's; none: unbounded) and up to today: the first of its days in `telemetry_days`
# (kept by the triggers of migration 0016) whose day has its own daily partition (a point of
# an older day stored in DEFAULT does not count, as before). The days are read in order from
# the primary key and the partition looked up for each until one has it (`offset 0` keeps that
# check out of the index scan, which would otherwise check every day of the window first).
_OLDEST_DATA_DAY = text("""
select x.day
from (
    select d.day
    from telemetry_days d
    where d.tenant_id = :tenant_id
      and d.day <= :today
      and d.day >= coalesce(
          :today - (
              select coalesce(t.max_retention_days, tr.max_retention_days)
              from tenants t left join tiers tr on tr.name = t.tier
              where t.id = :tenant_id
          ),
          date '-infinity'
      )
    order by d.day
    offset 0
) x
where to_regclass('public.telemetry_p' || to_char(x.day, 'YYYYMMDD')) is not null
limit 1
""")

_DELETE_EXPIRED_BATCH = text("""
delete from telemetry d
using (
    select t.series_id, t.ts from telemetry t
    where t.tenant_id = :tenant_id and t.ts < :cutoff
    limit :batch
) x
where d.tenant_id = :tenant_id and d.ts < :cutoff
  and d.series_id = x.series_id and d.ts = x.ts
""")

# Days wholly before the tenant's cutoff: their points are deleted or their partition dropped
# (which fires no trigger, so the day would stay listed).
_FORGET_EXPIRED_DAYS = text("""
delete from telemetry_days where tenant_id = :tenant_id and day < :before
""")

_RETENTION_WINDOWS = text("""
select t.id, coalesce(t.max_retention_days, tr.max_retention_days) as days
from tenants t
left join tiers tr on tr.name = t.tier
order by t.id
""")

_DROP_EXPIRED_PARTITIONS = text("select * from iiot_drop_expired_telemetry_partitions()")


@dataclass(frozen=True)
class PointRow:
    device_id: uuid.UUID
    key: str
    ts: datetime
    value_num: float | None
    value_bool: bool | None
    value_str: str | None
    unit: str | None
    quality: str | None

    @property
    def value(self) -> float | bool | str | None:
        if self.value_num is not None:
            return self.value_num
        if self.value_bool is not None:
            return self.value_bool
        return self.value_str


@dataclass(frozen=True)
class StatisticsRow:
    count: int
    mean: float | None
    min: float | None
    max: float | None
    stddev: float | None
    percentiles: tuple[float | None, float | None, float | None, float | None]


def _points(rows: Any) -> list[PointRow]:
    return [PointRow(*row) for row in rows]


class TelemetryQueryRepository(TenantRepository[TelemetryPoint]):
    model = TelemetryPoint

    def _params(self, **extra: Any) -> dict[str, Any]:
        return {"tenant_id": self.ctx.tenant_id, **extra}

    async def device_exists(self, device_id: uuid.UUID) -> bool:
        found = await self.session.scalar(
            select(Device.id).where(Device.tenant_id == self.ctx.tenant_id, Device.id == device_id)
        )
        return found is not None

    async def raw(
        self,
        device_id: uuid.UUID,
        key: str | None,
        start: datetime,
        end: datetime,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[PointRow]:
        """Points newest first; `after` is the (ts, key) of the last point of the previous page."""
        params = self._params(device_id=device_id, start=start, end=end, limit=limit)
        key_filter = after_filter = ""
        if key is not None:
            key_filter = "and s.key = :key"
            params["key"] = key
        if after is not None:
            after_filter = "and (t.ts, s.key) < (:after_ts, :after_key)"
            params["after_ts"], params["after_key"] = after
        stmt = text(_RAW.format(key_filter=key_filter, after_filter=after_filter))  # noqa: S608
        return _points(await self.session.execute(stmt, params))

    async def latest_for_device(self, device_id: uuid.UUID, limit: int) -> list[PointRow]:
        params = self._params(device_id=device_id, limit=limit)
        return _points(await self.session.execute(_LATEST_FOR_DEVICE, params))

    async def latest_for_tenant(self, limit: int) -> list[PointRow]:
        params = self._params(limit=limit)
        return _points(await self.session.execute(_LATEST_FOR_TENANT, params))

    async def aggregate(
        self,
        device_id: uuid.UUID,
        key: str,
        start: datetime,
        end: datetime,
        width: timedelta,
        fn: str,
    ) -> str:
        """The buckets as a JSON array `[{"ts", "value", "count"}, ...]`, oldest first."""
        params = self._params(device_id=device_id, key=key, start=start, end=end, width=width)
        body: str = await self.session.scalar(aggregate_statement(fn), params)
        return body

    async def statistics(
        self, device_id: uuid.UUID, key: str, start: datetime, end: datetime
    ) -> StatisticsRow:
        params = self._params(device_id=device_id, key=key, start=start, end=end)
        row = (await self.session.execute(_STATISTICS, params)).one()
        pct = tuple(row.pct) if row.pct is not None else (None, None, None, None)
        return StatisticsRow(
            count=row.n,
            mean=row.mean,
            min=row.min,
            max=row.max,
            stddev=row.stddev,
            percentiles=(pct[0], pct[1], pct[2], pct[3]),
        )

    async def oldest_data_day(self, today: date) -> date | None:
        """The oldest UTC day, within the tenant's retention window, holding any of its data."""
        day: date | None = await self.session.scalar(_OLDEST_DATA_DAY, self._params(today=today))
        return day

    @staticmethod
    def oldest_data_age_figure(
        tenant_id: BindParameter[uuid.UUID], today: BindParameter[date]
    ) -> ColumnElement[int]:
        """Whole days from `oldest_data_day(today)` to `today` as a scalar subquery (for the
        usage statement, whose parameters `tenant_id` and `today` are); NULL when the tenant
        has no data."""
        oldest = (
            _OLDEST_DATA_DAY.bindparams(tenant_id, today)
            .columns(column("day", Date))
            .scalar_subquery()
        )
        return type_coerce(today - oldest, Integer)

    async def delete_expired(self, cutoff: datetime, batch: int) -> int:
        """Delete up to `batch` of the tenant's points older than `cutoff`; the count deleted."""
        result = await self.session.execute(
            _DELETE_EXPIRED_BATCH, self._params(cutoff=cutoff, batch=batch)
        )
        assert isinstance(result, CursorResult)
        return int(result.rowcount)

    async def forget_days_before(self, day: date) -> None:
        """Unlist the tenant's days before `day` in `telemetry_days` (all of their points are
        gone: deleted, or in a dropped partition)."""
        await self.session.execute(_FORGET_EXPIRED_DAYS, self._params(before=day))


class RetentionPlatformRepository(SystemRepository):
    """Platform-wide reads and the partition drop of the retention job (system session)."""

    async def retention_windows(self) -> list[tuple[uuid.UUID, int | None]]:
        """Every tenant's effective `max_retention_days` (None: unlimited)."""
        rows = await self.session.execute(_RETENTION_WINDOWS)
        return [(r.id, r.days) for r in rows]

    async def drop_expired_partitions(self) -> list[str]:
        """Drop the daily partitions past every tenant's window; the names dropped."""
        rows = await self.session.execute(_DROP_EXPIRED_PARTITIONS)
        return [r[0] for r in rows]


_REMOVED_TENANTS = text("select * from iiot_telemetry_removed_series_tenants()")

_REMOVED_SERIES = text("""
select series_id from telemetry_series_removed
where tenant_id = :tenant_id
order by series_id
limit :limit
""")

# One partition's day (explicit bounds prune to that partition) of the given series, at most
# `batch` points: an index range per series on that partition's primary key.
_DELETE_SERIES_POINTS = text("""
delete from telemetry d
using (
    select t.series_id, t.ts from telemetry t
    where t.tenant_id = :tenant_id and t.series_id = any(:series)
      and t.ts >= :start and t.ts < :end
    limit :batch
) x
where d.tenant_id = :tenant_id and d.series_id = x.series_id and d.ts = x.ts
  and d.ts >= :start and d.ts < :end
""")

_FORGET_REMOVED = text("""
delete from telemetry_series_removed
where tenant_id = :tenant_id and series_id = any(:series)
""")


class RemovedSeriesRepository(TenantRepository[TelemetryPoint]):
    """The points of removed series (deleted devices), deleted a partition at a time."""

    model = TelemetryPoint

    async def pending(self, limit: int) -> list[int]:
        rows = await self.session.execute(
            _REMOVED_SERIES, {"tenant_id": self.ctx.tenant_id, "limit": limit}
        )
        return [int(r[0]) for r in rows]

    async def delete_points(
        self, series: list[int], start: datetime, end: datetime, batch: int
    ) -> int:
        result = await self.session.execute(
            _DELETE_SERIES_POINTS,
            {
                "tenant_id": self.ctx.tenant_id,
                "series": series,
                "start": start,
                "end": end,
                "batch": batch,
            },
        )
        assert isinstance(result, CursorResult)
        return int(result.rowcount)

    async def forget(self, series: list[int]) -> None:
        await self.session.execute(
            _FORGET_REMOVED, {"tenant_id": self.ctx.tenant_id, "series": series}
        )


class RemovedSeriesPlatformRepository(SystemRepository):
    async def tenants(self) -> list[uuid.UUID]:
        return [r[0] for r in await self.session.execute(_REMOVED_TENANTS)]
