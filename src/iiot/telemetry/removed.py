"""Deleting the points of removed series (a deleted device's or a purged tenant's).

Points carry no foreign key, so deleting a device removes its series from the dictionary at
once (its points become unreachable: every read goes through the dictionary) and a trigger
lists them in `telemetry_series_removed`. This job deletes those points a daily partition at
a time, in batches of `DELETE_BATCH` rows, each batch its own transaction, so no statement
holds locks or undo for long; the series are forgotten once every partition is clear.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING

from iiot.telemetry.query_repository import (
    RemovedSeriesPlatformRepository,
    RemovedSeriesRepository,
)
from iiot.telemetry.repository import PartitionRepository
from iiot.tenancy.context import system_context

if TYPE_CHECKING:
    from iiot.runtime import Runtime

log = logging.getLogger(__name__)

JOB_NAME = "telemetry-removed-series"
INTERVAL_SECONDS = 300.0
DELETE_BATCH = 10_000
SERIES_PER_ROUND = 500

# Before and after every daily partition: the DEFAULT partition's possible range.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FAR = datetime(9999, 1, 1, tzinfo=UTC)


def _ranges(days: list[datetime]) -> list[tuple[datetime, datetime]]:
    """Each partition's day, then the gaps between (the DEFAULT partition's rows)."""
    out: list[tuple[datetime, datetime]] = []
    start = _EPOCH
    for day in days:
        if day > start:
            out.append((start, day))
        out.append((day, day + timedelta(days=1)))
        start = day + timedelta(days=1)
    out.append((start, _FAR))
    return out


async def delete_removed_series(rt: Runtime, batch: int = DELETE_BATCH) -> int:
    """Delete the points of every removed series; returns how many points were deleted."""
    async with rt.db.system() as session:
        tenants = await RemovedSeriesPlatformRepository(session).tenants()
        days = await PartitionRepository(session).days()
    ranges = _ranges([datetime.combine(d, time(), tzinfo=UTC) for d in sorted(days)])
    total = 0
    for tenant_id in tenants:
        ctx = system_context(tenant_id)
        while True:
            async with rt.db.tenant(ctx) as session:
                series = await RemovedSeriesRepository(session, ctx).pending(SERIES_PER_ROUND)
            if not series:
                break
            for start, end in ranges:
                while True:
                    async with rt.db.tenant(ctx) as session:
                        deleted = await RemovedSeriesRepository(session, ctx).delete_points(
                            series, start, end, batch
                        )
                    total += deleted
                    if deleted < batch:
                        break
            async with rt.db.tenant(ctx) as session:
                await RemovedSeriesRepository(session, ctx).forget(series)
            if len(series) < SERIES_PER_ROUND:
                break
    if total:
        log.info("deleted %d points of removed series of %d tenants", total, len(tenants))
    return total


async def run_job(rt: Runtime) -> None:
    await delete_removed_series(rt)
