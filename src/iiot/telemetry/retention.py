"""Retention: each tenant keeps telemetry for its effective `max_retention_days`, no longer.

Two steps, cheapest first:

1. Daily partitions that lie wholly before the longest window of any tenant hold only expired
   rows, so they are dropped whole (`iiot_drop_expired_telemetry_partitions()`, a narrow
   SECURITY DEFINER function of migration 0005 that computes that cutoff itself: the
   application role cannot drop tables, and cannot make the function drop anything newer).
2. For every tenant with a window, its older rows are deleted in batches, each in its own
   transaction. Partition pruning confines those deletes to the partitions between the
   tenant's cutoff and the dropped ones (and the DEFAULT partition), so a tenant that keeps
   the longest window costs almost nothing. Then its days before the cutoff leave
   `telemetry_days` (its triggers see deleted rows, not dropped partitions).

The job runs as platform work: it reads the windows in a system session and deletes in a
tenant session per tenant, because row-level security hides every row otherwise.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from iiot.modules import UsageFigures, UsageParameters
from iiot.telemetry import partitions
from iiot.telemetry.query_repository import RetentionPlatformRepository, TelemetryQueryRepository
from iiot.tenancy.context import system_context

if TYPE_CHECKING:
    from iiot.runtime import Runtime

log = logging.getLogger(__name__)

JOB_NAME = "telemetry-retention"
INTERVAL_SECONDS = 3600.0
DELETE_BATCH = 10_000


@dataclass
class RetentionReport:
    dropped_partitions: list[str] = field(default_factory=list)
    deleted_by_tenant: dict[uuid.UUID, int] = field(default_factory=dict)

    @property
    def deleted(self) -> int:
        return sum(self.deleted_by_tenant.values())


async def enforce_retention(
    rt: Runtime, *, now: datetime | None = None, batch: int = DELETE_BATCH
) -> RetentionReport:
    """Drop wholly expired partitions, then delete each tenant's expired rows in batches."""
    now = now or datetime.now(UTC)
    report = RetentionReport()
    async with rt.db.system() as session:
        platform = RetentionPlatformRepository(session)
        windows = await platform.retention_windows()
        report.dropped_partitions = await platform.drop_expired_partitions()
    # This process's partition keeper must not take a dropped day for an existing partition.
    keep = partitions.keeper(rt)
    for name in report.dropped_partitions:
        keep.forget(date.fromisoformat(name.removeprefix("telemetry_p")))
    for tenant_id, days in windows:
        if days is None:
            continue
        cutoff = now - timedelta(days=days)
        ctx = system_context(tenant_id)
        total = 0
        while True:
            async with rt.db.tenant(ctx) as session:
                deleted = await TelemetryQueryRepository(session, ctx).delete_expired(cutoff, batch)
            total += deleted
            if deleted < batch:
                break
        async with rt.db.tenant(ctx) as session:
            await TelemetryQueryRepository(session, ctx).forget_days_before(cutoff.date())
        if total:
            report.deleted_by_tenant[tenant_id] = total
    if report.dropped_partitions or report.deleted:
        log.info(
            "retention: dropped %d partitions, deleted %d points of %d tenants",
            len(report.dropped_partitions),
            report.deleted,
            len(report.deleted_by_tenant),
        )
    return report


async def run_job(rt: Runtime) -> None:
    await enforce_retention(rt)


def oldest_data_age(p: UsageParameters) -> UsageFigures:
    """`oldest_data_age_days`: whole days since the oldest UTC day holding the tenant's data.

    The first of the tenant's days listed in `telemetry_days` from the start of its window:
    one index probe, whatever the number of partitions or points. None when the tenant has no
    data.
    """
    figure = TelemetryQueryRepository.oldest_data_age_figure(p.tenant_id, p.today)
    return {"oldest_data_age_days": figure}
