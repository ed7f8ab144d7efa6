"""The usage report of a tenant: figures per UTC day or month, and the top devices by points."""

from __future__ import annotations

from datetime import date

from iiot.db.session import TenantSession
from iiot.errors import ValidationFailed
from iiot.metering.repository import Granularity, UsageRepository
from iiot.metering.schemas import DeviceUsage, UsageFigures, UsagePeriod, UsageReport
from iiot.tenancy.context import TenantContext

MAX_DAYS = {"day": 366, "month": 3 * 366}


def _months(start: date, end: date) -> list[date]:
    out, current = [], start.replace(day=1)
    while current <= end:
        out.append(current)
        current = current.replace(
            year=current.year + current.month // 12, month=current.month % 12 + 1
        )
    return out


def _days(start: date, end: date) -> list[date]:
    return [date.fromordinal(d) for d in range(start.toordinal(), end.toordinal() + 1)]


async def usage_report(
    session: TenantSession,
    ctx: TenantContext,
    *,
    start: date,
    end: date,
    granularity: Granularity,
    top: int,
    flush_interval_seconds: float,
) -> UsageReport:
    if end < start:
        raise ValidationFailed(
            "`to` is before `from`",
            errors=[{"field": "to", "in": "query", "message": "must not be before from"}],
        )
    if (end - start).days + 1 > MAX_DAYS[granularity]:
        raise ValidationFailed(
            f"at most {MAX_DAYS[granularity]} days per request with granularity {granularity}",
            errors=[{"field": "from", "in": "query", "message": "range too long"}],
        )
    repo = UsageRepository(session, ctx)
    series = await repo.series(start, end, granularity)
    periods = [
        UsagePeriod(period=p, **series.get(p, {}))
        for p in (_days(start, end) if granularity == "day" else _months(start, end))
    ]
    totals = UsageFigures(
        **{name: sum(getattr(p, name) for p in periods) for name in UsageFigures.model_fields}
    )
    devices = await repo.top_devices(start, end, top) if top else []
    return UsageReport(
        tenant_id=ctx.tenant_id,
        from_=start,
        to=end,
        granularity=granularity,
        periods=periods,
        totals=totals,
        top_devices=[
            DeviceUsage(device_id=d.device_id, name=d.name, points=d.points) for d in devices
        ],
        flush_interval_seconds=flush_interval_seconds,
    )
