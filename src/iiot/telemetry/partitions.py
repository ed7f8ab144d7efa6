"""Daily partitions of `telemetry` (`telemetry_pYYYYMMDD`, UTC days).

The application role owns no table, so partitions are created and dropped through the
SECURITY DEFINER functions of migration 0003. The `telemetry-partitions` job keeps
`AHEAD_DAYS` of partitions ready; ingest checks the days of each batch against the set known
in this process (a set look-up) and creates a missing day's partition in its own short
transaction before writing, so a late or back-filled day lands in its own partition rather
than in the DEFAULT one. Days older than `OLDEST_PARTITIONED_DAYS` stay in DEFAULT.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from iiot.telemetry.repository import PartitionRepository

if TYPE_CHECKING:
    from iiot.runtime import Runtime

AHEAD_DAYS = 7
OLDEST_PARTITIONED_DAYS = 400
JOB_INTERVAL_SECONDS = 3600.0


def partition_name(day: date) -> str:
    return f"telemetry_p{day:%Y%m%d}"


class PartitionKeeper:
    def __init__(self) -> None:
        # Days whose partition exists, or which were checked and must stay in DEFAULT.
        self._settled: set[date] = set()
        self._lock = asyncio.Lock()

    async def ensure(self, rt: Runtime, first: date, last: date) -> None:
        """Make sure every day from `first` to `last` has its partition (cheap when known)."""
        day = first
        missing: list[date] = []
        while day <= last:
            if day not in self._settled:
                missing.append(day)
            day += timedelta(days=1)
        if not missing:
            return
        oldest = datetime.now(UTC).date() - timedelta(days=OLDEST_PARTITIONED_DAYS)
        async with self._lock:
            for day in missing:
                if day in self._settled:
                    continue
                if day >= oldest:
                    async with rt.db.system() as session:
                        await PartitionRepository(session).ensure(day)
                self._settled.add(day)

    async def refresh(self, rt: Runtime) -> set[date]:
        async with rt.db.system() as session:
            days = await PartitionRepository(session).days()
        self._settled = set(days)
        return self._settled

    def forget(self, day: date) -> None:
        self._settled.discard(day)


def _new_keeper(rt: Runtime) -> PartitionKeeper:
    return PartitionKeeper()


def keeper(rt: Runtime) -> PartitionKeeper:
    return rt.state.get(_new_keeper)


async def prepare_ahead(rt: Runtime) -> None:
    """The scheduled job: partitions from yesterday to `AHEAD_DAYS` ahead exist."""
    today = datetime.now(UTC).date()
    keep = keeper(rt)
    await keep.refresh(rt)
    await keep.ensure(rt, today - timedelta(days=1), today + timedelta(days=AHEAD_DAYS))
