"""Service-level targets per severity: minutes to acknowledge and to resolve."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

SLA_MINUTES: dict[str, tuple[int, int]] = {
    "critical": (5, 30),
    "high": (15, 120),
    "medium": (60, 480),
    "low": (240, 1440),
    "info": (1440, 10080),
}


@dataclass(frozen=True)
class SlaStatus:
    tta_minutes: int
    ttr_minutes: int
    tta_due_at: datetime
    ttr_due_at: datetime
    tta_breached: bool
    ttr_breached: bool


def sla_status(
    severity: str,
    created_at: datetime,
    acknowledged_at: datetime | None,
    resolved_at: datetime | None,
    now: datetime,
) -> SlaStatus:
    """Breached when the step happened after its due time, or has not happened and is overdue.

    An alert resolved without being acknowledged counts as acknowledged when resolved.
    """
    tta, ttr = SLA_MINUTES[severity]
    tta_due = created_at + timedelta(minutes=tta)
    ttr_due = created_at + timedelta(minutes=ttr)
    acked = acknowledged_at or resolved_at
    return SlaStatus(
        tta_minutes=tta,
        ttr_minutes=ttr,
        tta_due_at=tta_due,
        ttr_due_at=ttr_due,
        tta_breached=(acked or now) > tta_due,
        ttr_breached=(resolved_at or now) > ttr_due,
    )
