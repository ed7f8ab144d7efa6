"""Who is on call: a weekly rotation in the schedule's time zone, unless an override covers the
moment (where overrides overlap, the newest wins).

Hand-overs happen at the wall-clock time of `rotation_start`, every seven days, in the
schedule's time zone: a 09:00 hand-over stays at 09:00 local time across daylight-saving
changes (that week is an hour shorter or longer).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

WEEK = timedelta(days=7)


@dataclass(frozen=True)
class Shift:
    email: str
    name: str | None
    source: Literal["rotation", "override"]
    override_id: uuid.UUID | None
    since: datetime
    until: datetime


@dataclass(frozen=True)
class OverridePeriod:
    id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    email: str
    name: str | None
    created_at: datetime


def rotation_shift(
    participants: Sequence[dict[str, Any]], time_zone: str, rotation_start: datetime, at: datetime
) -> Shift:
    """The rotation's participant at `at` (aware), with the shift's bounds in UTC."""
    zone = ZoneInfo(time_zone)
    local = at.astimezone(zone).replace(tzinfo=None)
    weeks = (local - rotation_start) // WEEK
    person = participants[weeks % len(participants)]
    start = rotation_start + weeks * WEEK
    return Shift(
        email=person["email"],
        name=person.get("name"),
        source="rotation",
        override_id=None,
        since=start.replace(tzinfo=zone).astimezone(UTC),
        until=(start + WEEK).replace(tzinfo=zone).astimezone(UTC),
    )


def on_call(
    participants: Sequence[dict[str, Any]],
    time_zone: str,
    rotation_start: datetime,
    overrides: Sequence[OverridePeriod],
    at: datetime,
) -> Shift:
    covering = [o for o in overrides if o.starts_at <= at < o.ends_at]
    if covering:
        o = max(covering, key=lambda o: (o.created_at, str(o.id)))
        return Shift(o.email, o.name, "override", o.id, o.starts_at, o.ends_at)
    return rotation_shift(participants, time_zone, rotation_start, at)
