"""Usage metering: counters per tenant, UTC day and metric, aggregated in this process and
written to the database by a periodic flush (never one database write per request).

`add(tenant, metric, n)` costs a dictionary update. Every `IIOT_USAGE_FLUSH_SECONDS` each
process's flusher (started by the metering module) calls `flush`, which swaps the aggregates
out and adds them to `usage_daily` / `device_usage_daily` with one upsert per tenant; if the
write fails the figures are merged back and retried on the next flush. A crash loses what was
counted since the last flush (at most `IIOT_USAGE_FLUSH_SECONDS` of traffic); a graceful stop
flushes.

Each process counts and flushes its own traffic, so several processes add up without sharing
anything but the database.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Literal

from iiot.metering.repository import UsageRepository
from iiot.tenancy.context import system_context

if TYPE_CHECKING:
    from iiot.runtime import Runtime

log = logging.getLogger(__name__)

Metric = Literal[
    "api_requests",
    "device_messages",
    "telemetry_points",
    "stored_points",
    "rule_evaluations",
    "emails_sent",
    "webhooks_sent",
]
METRICS: tuple[Metric, ...] = (
    "api_requests",
    "device_messages",
    "telemetry_points",
    "stored_points",
    "rule_evaluations",
    "emails_sent",
    "webhooks_sent",
)

TenantCounts = Counter[tuple[uuid.UUID, date, str]]
DeviceCounts = Counter[tuple[uuid.UUID, date, uuid.UUID]]


def utc_today() -> date:
    return datetime.now(UTC).date()


class UsageMeter:
    """This process's usage counters (`rt.state.get(UsageMeter)`)."""

    def __init__(self, rt: Runtime | None = None) -> None:
        self._counts: TenantCounts = Counter()
        self._device_points: DeviceCounts = Counter()
        self._lock = asyncio.Lock()
        self.task: asyncio.Task[None] | None = None

    def add(self, tenant_id: uuid.UUID, metric: Metric, amount: int = 1) -> None:
        if amount:
            self._counts[(tenant_id, utc_today(), metric)] += amount

    def add_device_points(self, tenant_id: uuid.UUID, per_device: dict[uuid.UUID, int]) -> None:
        day = utc_today()
        for device_id, points in per_device.items():
            self._device_points[(tenant_id, day, device_id)] += points

    @property
    def pending(self) -> int:
        return len(self._counts) + len(self._device_points)

    async def flush(self, rt: Runtime) -> int:
        """Write the aggregates; returns the number of rows upserted."""
        async with self._lock:
            counts, self._counts = self._counts, Counter()
            devices, self._device_points = self._device_points, Counter()
            tenants = {k[0] for k in counts} | {k[0] for k in devices}
            written = 0
            for tenant_id in tenants:
                mine = {(d, m): n for (t, d, m), n in counts.items() if t == tenant_id}
                per_device = {(d, dev): n for (t, d, dev), n in devices.items() if t == tenant_id}
                try:
                    async with rt.db.tenant(system_context(tenant_id)) as session:
                        repo = UsageRepository(session, system_context(tenant_id))
                        written += await repo.add_counts(mine)
                        written += await repo.add_device_points(per_device)
                except Exception:
                    # Keep the figures for the next flush (a deleted tenant's are dropped by
                    # its foreign key and logged once per flush).
                    log.warning("usage flush for tenant %s failed; kept", tenant_id, exc_info=True)
                    for (d, m), n in mine.items():
                        self._counts[(tenant_id, d, m)] += n
                    for (d, dev), n in per_device.items():
                        self._device_points[(tenant_id, d, dev)] += n
            return written

    def discard(self) -> None:
        self._counts.clear()
        self._device_points.clear()


def usage_meter(rt: Runtime) -> UsageMeter:
    return rt.state.get(UsageMeter)


async def _flush_periodically(rt: Runtime) -> None:
    meter = usage_meter(rt)
    while True:
        await asyncio.sleep(rt.settings.usage_flush_seconds)
        try:
            await meter.flush(rt)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("usage flush failed")


async def start_flusher(rt: Runtime) -> None:
    """Start this process's periodic flush (every process flushes its own counts)."""
    meter = usage_meter(rt)
    if meter.task is None or meter.task.done():
        meter.task = asyncio.create_task(_flush_periodically(rt), name="usage-flush")


async def stop_and_flush(rt: Runtime) -> None:
    """On a graceful stop: no more periodic flushes, then one last flush."""
    meter = rt.state.peek(UsageMeter)
    if meter is None:
        return
    if meter.task is not None:
        meter.task.cancel()
        await asyncio.gather(meter.task, return_exceptions=True)
        meter.task = None
    await meter.flush(rt)
