"""In-process events between domains, so that lower layers never import higher ones.

`telemetry_committed` fires after an ingest transaction that queued a batch for the rules
engine commits (the batch itself is in `rule_batches`; `points` is empty on that path); the
listeners are those of the modules the runtime runs (the rules engine's, for one).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from iiot.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CommittedPoint:
    device_id: uuid.UUID
    key: str
    ts: datetime
    value: float | bool | str | None


@dataclass(frozen=True, slots=True)
class TelemetryCommitted:
    tenant_id: uuid.UUID
    points: list[CommittedPoint]
    # Whether the ingest transaction queued a batch for the rules engine (`rule_batches`):
    # only when the tenant has an enabled telemetry rule.
    rules_queued: bool = True


async def telemetry_committed(rt: Runtime, event: TelemetryCommitted) -> None:
    """Run every listener; a failing listener is logged and never fails the ingest."""
    for listener in rt.wiring.telemetry_listeners:
        try:
            await listener(rt, event)
        except Exception:
            log.exception("telemetry listener %r failed", listener)
