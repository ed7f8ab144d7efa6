"""SQL of the analytics routes. Every figure that PostgreSQL can compute is computed there:
window functions for moving averages and rates, `regr_*` for the least-squares fit, `corr`,
`percentile_cont` for quantiles. Every statement names the context's tenant, one device, one
key and a bounded time range, so it walks the telemetry primary key of the pruned partitions.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text

from iiot.db.repository import TenantRepository
from iiot.models.telemetry import TelemetryPoint


def _series_id(key: str) -> str:
    """The series of the device's `key` (points are keyed by series id, not device and key)."""
    where = "sr.tenant_id = :tenant_id and sr.device_id = :device_id"
    return f"(select sr.id from telemetry_series sr where {where} and sr.key = :{key})"  # noqa: S608


_SERIES = f"""
    select t.ts, t.value_num as y
    from telemetry t
    where t.tenant_id = :tenant_id and t.series_id = {_series_id("key")}
      and t.ts >= :start and t.ts < :end and t.value_num is not null
"""  # noqa: S608 - constant fragments only

_UNIT = text(f"""
select t.unit from telemetry t
where t.tenant_id = :tenant_id and t.series_id = {_series_id("key")}
  and t.ts >= :start and t.ts < :end and t.unit is not null
order by t.ts desc limit 1
""")  # noqa: S608 - constant fragments only

# The newest `limit` readings, oldest first, with the `window - 1` readings before them read
# too so that their moving averages and rates are complete.
_TIMESERIES = text(f"""
with recent as (
    select s.ts, s.y from ({_SERIES}) s order by s.ts desc limit :limit + :window
),
computed as (
    select ts, y,
           avg(y) over (order by ts rows between :preceding preceding and current row)
             as moving_avg,
           (y - lag(y) over (order by ts))
             / nullif(extract(epoch from ts - lag(ts) over (order by ts))::float8, 0) * 60.0
             as rate_per_minute,
           row_number() over (order by ts desc) as rn
    from recent
)
select ts, y, moving_avg, rate_per_minute from computed where rn <= :limit order by ts
""")  # noqa: S608 - constant fragments only

# x: seconds since the first reading (keeps the fit well conditioned).
_FIT = text(f"""
with s as ({_SERIES}),
pts as (
    select ts, y, extract(epoch from ts - min(ts) over ())::float8 as x from s
),
fit as (
    select regr_count(y, x) as n, regr_slope(y, x) as slope, regr_intercept(y, x) as intercept,
           regr_r2(y, x) as r2, regr_sxx(y, x) as sxx, regr_avgx(y, x) as xbar,
           corr(y, x) as r, avg(y) as mean, stddev_samp(y) as stddev,
           min(y) as min, max(y) as max, min(ts) as first_ts, max(ts) as last_ts,
           max(x) as last_x
    from pts
)
select fit.*,
       (select p.y from pts p order by p.ts desc limit 1) as last_value,
       (select sum(power(p.y - (fit.intercept + fit.slope * p.x), 2)) from pts p) as sse
from fit
""")  # noqa: S608 - constant fragments only

_STATISTICS = text(f"""
select count(*) as n, avg(s.y) as mean, stddev_samp(s.y) as stddev, var_samp(s.y) as variance,
       min(s.y) as min, max(s.y) as max, min(s.ts) as first_ts, max(s.ts) as last_ts,
       percentile_cont(array[0.25, 0.5, 0.75, 0.95]) within group (order by s.y) as pct
from ({_SERIES}) s
""")  # noqa: S608 - constant fragments only

_CORRELATION = text(f"""
with pairs as (
    select a.value_num as y1, b.value_num as y2
    from telemetry a
    join telemetry b
      on b.tenant_id = a.tenant_id and b.series_id = {_series_id("key2")}
     and b.ts = a.ts
    where a.tenant_id = :tenant_id and a.series_id = {_series_id("key1")}
      and a.ts >= :start and a.ts < :end and b.ts >= :start and b.ts < :end
      and a.value_num is not null and b.value_num is not null
)
select count(*) as n, corr(y1, y2) as r,
       avg(y1) as mean1, stddev_samp(y1) as stddev1,
       avg(y2) as mean2, stddev_samp(y2) as stddev2
from pairs
""")  # noqa: S608 - constant fragments only


@dataclass(frozen=True)
class SeriesPoint:
    ts: datetime
    value: float
    moving_avg: float
    rate_per_minute: float | None


@dataclass(frozen=True)
class Fit:
    n: int
    slope: float | None
    intercept: float | None
    r2: float | None
    r: float | None
    sxx: float | None
    xbar: float | None
    mean: float | None
    stddev: float | None
    min: float | None
    max: float | None
    first_ts: datetime | None
    last_ts: datetime | None
    last_x: float | None
    last_value: float | None
    sse: float | None


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float | None
    stddev: float | None
    variance: float | None
    min: float | None
    max: float | None
    first_ts: datetime | None
    last_ts: datetime | None
    percentiles: tuple[float, float, float, float] | None


@dataclass(frozen=True)
class Pairs:
    n: int
    r: float | None
    mean1: float | None
    stddev1: float | None
    mean2: float | None
    stddev2: float | None


class AnalyticsRepository(TenantRepository[TelemetryPoint]):
    model = TelemetryPoint

    def _params(
        self, device_id: uuid.UUID, key: str, start: datetime, end: datetime, **extra: Any
    ) -> dict[str, Any]:
        return {
            "tenant_id": self.ctx.tenant_id,
            "device_id": device_id,
            "key": key,
            "start": start,
            "end": end,
            **extra,
        }

    async def unit(
        self, device_id: uuid.UUID, key: str, start: datetime, end: datetime
    ) -> str | None:
        found: str | None = await self.session.scalar(
            _UNIT, self._params(device_id, key, start, end)
        )
        return found

    async def timeseries(
        self,
        device_id: uuid.UUID,
        key: str,
        start: datetime,
        end: datetime,
        window: int,
        limit: int,
    ) -> list[SeriesPoint]:
        params = self._params(
            device_id, key, start, end, window=window, preceding=window - 1, limit=limit
        )
        rows = await self.session.execute(_TIMESERIES, params)
        return [SeriesPoint(r.ts, r.y, r.moving_avg, r.rate_per_minute) for r in rows]

    async def fit(self, device_id: uuid.UUID, key: str, start: datetime, end: datetime) -> Fit:
        r = (await self.session.execute(_FIT, self._params(device_id, key, start, end))).one()
        return Fit(
            n=int(r.n or 0),
            slope=r.slope,
            intercept=r.intercept,
            r2=r.r2,
            r=r.r,
            sxx=r.sxx,
            xbar=r.xbar,
            mean=r.mean,
            stddev=r.stddev,
            min=r.min,
            max=r.max,
            first_ts=r.first_ts,
            last_ts=r.last_ts,
            last_x=r.last_x,
            last_value=r.last_value,
            sse=r.sse,
        )

    async def summary(
        self, device_id: uuid.UUID, key: str, start: datetime, end: datetime
    ) -> Summary:
        params = self._params(device_id, key, start, end)
        r = (await self.session.execute(_STATISTICS, params)).one()
        pct = tuple(r.pct) if r.pct is not None else None
        return Summary(
            n=int(r.n),
            mean=r.mean,
            stddev=r.stddev,
            variance=r.variance,
            min=r.min,
            max=r.max,
            first_ts=r.first_ts,
            last_ts=r.last_ts,
            percentiles=(pct[0], pct[1], pct[2], pct[3]) if pct else None,
        )

    async def pairs(
        self, device_id: uuid.UUID, key1: str, key2: str, start: datetime, end: datetime
    ) -> Pairs:
        params = {
            "tenant_id": self.ctx.tenant_id,
            "device_id": device_id,
            "key1": key1,
            "key2": key2,
            "start": start,
            "end": end,
        }
        r = (await self.session.execute(_CORRELATION, params)).one()
        return Pairs(int(r.n), r.r, r.mean1, r.stddev1, r.mean2, r.stddev2)
