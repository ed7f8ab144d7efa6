"""Usage counters: upserts from the flush, and the figures per day or month."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from iiot.db.repository import TenantRepository
from iiot.models.devices import Device
from iiot.models.usage import DeviceUsageDaily, UsageDaily

Granularity = Literal["day", "month"]


@dataclass(frozen=True, slots=True)
class DevicePoints:
    device_id: uuid.UUID
    name: str | None
    points: int


class UsageRepository(TenantRepository[UsageDaily]):
    model = UsageDaily

    async def add_counts(self, counts: dict[tuple[date, str], int]) -> int:
        if not counts:
            return 0
        stmt = insert(UsageDaily).values(
            [
                {"tenant_id": self.ctx.tenant_id, "day": day, "metric": metric, "value": n}
                for (day, metric), n in sorted(counts.items())
            ]
        )
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=["tenant_id", "day", "metric"],
                set_={"value": UsageDaily.value + stmt.excluded.value},
            )
        )
        return len(counts)

    async def add_device_points(self, points: dict[tuple[date, uuid.UUID], int]) -> int:
        if not points:
            return 0
        stmt = insert(DeviceUsageDaily).values(
            [
                {"tenant_id": self.ctx.tenant_id, "day": day, "device_id": device, "points": n}
                for (day, device), n in sorted(points.items())
            ]
        )
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=["tenant_id", "day", "device_id"],
                set_={"points": DeviceUsageDaily.points + stmt.excluded.points},
            )
        )
        return len(points)

    async def series(
        self, start: date, end: date, granularity: Granularity
    ) -> dict[date, dict[str, int]]:
        """{period start: {metric: total}} for the days in [start, end]."""
        period = (
            UsageDaily.day
            if granularity == "day"
            else func.date_trunc("month", UsageDaily.day).cast(UsageDaily.day.type)
        )
        rows = await self.session.execute(
            select(period.label("period"), UsageDaily.metric, func.sum(UsageDaily.value))
            .where(
                UsageDaily.tenant_id == self.ctx.tenant_id,
                UsageDaily.day >= start,
                UsageDaily.day <= end,
            )
            .group_by(period, UsageDaily.metric)
        )
        out: dict[date, dict[str, int]] = {}
        for period_start, metric, total in rows:
            out.setdefault(period_start, {})[metric] = int(total)
        return out

    async def top_devices(self, start: date, end: date, limit: int) -> list[DevicePoints]:
        """The devices with the most points in [start, end], most first."""
        total = func.sum(DeviceUsageDaily.points).label("points")
        usage = (
            select(DeviceUsageDaily.device_id, total)
            .where(
                DeviceUsageDaily.tenant_id == self.ctx.tenant_id,
                DeviceUsageDaily.day >= start,
                DeviceUsageDaily.day <= end,
            )
            .group_by(DeviceUsageDaily.device_id)
            .order_by(total.desc(), DeviceUsageDaily.device_id)
            .limit(limit)
            .subquery()
        )
        rows = await self.session.execute(
            select(usage.c.device_id, Device.name, usage.c.points)
            .outerjoin(
                Device,
                (Device.tenant_id == self.ctx.tenant_id) & (Device.id == usage.c.device_id),
            )
            .order_by(usage.c.points.desc(), usage.c.device_id)
        )
        return [DevicePoints(d, name, int(p)) for d, name, p in rows]
