"""In-process events between domains, so that lower layers never import higher ones.

`telemetry_committed` fires after an ingest transaction that queued a batch for the rules
engine commits (the batch itself is in `rule_batches`; `points` is empty on that path); the
listeners are those of the modules the runtime runs (the rules engine's, for one).
"""

from __future__ import annotations

import logging
import operator
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import TYPE_CHECKING, overload

if TYPE_CHECKING:
    from iiot.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CommittedPoint:
    device_id: uuid.UUID
    key: str
    ts: datetime
    value: float | bool | str | None


class CommittedColumns(Sequence[CommittedPoint]):
    """A committed batch's points as the columns ingest already holds: a `CommittedPoint` is
    made only for a point somebody reads (building one per point of every batch was a tenth
    of the server's CPU in batch ingest, whether or not anybody listened)."""

    __slots__ = ("device_ids", "keys", "ts", "values")

    def __init__(
        self,
        device_ids: list[uuid.UUID],
        keys: list[str],
        ts: list[datetime],
        values: list[float | bool | str | None],
    ) -> None:
        self.device_ids = device_ids
        self.keys = keys
        self.ts = ts
        self.values = values

    def __len__(self) -> int:
        return len(self.keys)

    @overload
    def __getitem__(self, index: int) -> CommittedPoint: ...

    @overload
    def __getitem__(self, index: slice) -> list[CommittedPoint]: ...

    def __getitem__(self, index: int | slice) -> CommittedPoint | list[CommittedPoint]:
        if isinstance(index, slice):
            return list(self)[index]
        return CommittedPoint(
            self.device_ids[index], self.keys[index], self.ts[index], self.values[index]
        )

    def __iter__(self) -> Iterator[CommittedPoint]:
        return map(CommittedPoint, self.device_ids, self.keys, self.ts, self.values)

    def newest(self) -> list[CommittedPoint]:
        """The newest point of each (device, key); of equal times the last one."""
        ts = self.ts
        if not all(map(operator.le, ts, islice(ts, 1, None))):
            return newest_points(list(self))
        # The usual batch, in time order: the last point of each series is its newest. With
        # one device (compared by identity first) only the keys are hashed: no pair tuples,
        # no Python-level `UUID.__hash__` per point.
        ids = self.device_ids
        if not ids:
            return []
        rows = range(len(ids))
        last: dict[object, int]
        if ids.count(ids[0]) == len(ids):
            last = dict(zip(self.keys, rows, strict=True))
        else:
            last = dict(zip(zip(ids, self.keys, strict=True), rows, strict=True))
        return [self[i] for i in last.values()]


def newest_points(points: Sequence[CommittedPoint]) -> list[CommittedPoint]:
    """The newest point of each (device, key) of `points`; of equal times the last one."""
    if isinstance(points, CommittedColumns):
        return points.newest()
    newest: dict[tuple[uuid.UUID, str], CommittedPoint] = {}
    for p in points:
        current = newest.get((p.device_id, p.key))
        if current is None or current.ts <= p.ts:
            newest[(p.device_id, p.key)] = p
    return list(newest.values())


@dataclass(frozen=True, slots=True)
class TelemetryCommitted:
    tenant_id: uuid.UUID
    points: Sequence[CommittedPoint]
    # Whether the ingest transaction queued a batch for the rules engine (`rule_batches`):
    # only when the tenant has an enabled telemetry rule.
    rules_queued: bool = True
    # Whether another process may have live subscribers of the tenant, judged inside the
    # ingest transaction (`iiot.db.watch`): only then are the points published to them.
    watched: bool = True


async def telemetry_committed(rt: Runtime, event: TelemetryCommitted) -> None:
    """Run every listener; a failing listener is logged and never fails the ingest."""
    for listener in rt.wiring.telemetry_listeners:
        try:
            await listener(rt, event)
        except Exception:
            log.exception("telemetry listener %r failed", listener)
