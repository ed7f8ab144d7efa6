"""In-process events between domains, so that lower layers never import higher ones.

`telemetry_committed` fires after an ingest transaction commits (the rules engine listens).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
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


TelemetryListener = Callable[["Runtime", TelemetryCommitted], Awaitable[None]]
_telemetry_listeners: list[TelemetryListener] = []


def on_telemetry_committed(listener: TelemetryListener) -> TelemetryListener:
    _telemetry_listeners.append(listener)
    return listener


async def telemetry_committed(rt: Runtime, event: TelemetryCommitted) -> None:
    """Run every listener; a failing listener is logged and never fails the ingest."""
    for listener in list(_telemetry_listeners):
        try:
            await listener(rt, event)
        except Exception:
            log.exception("telemetry listener %r failed", listener)
