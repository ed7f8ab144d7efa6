"""Wire format of the telemetry query routes. Timestamps go out as RFC 3339 UTC with 'Z'."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, PlainSerializer


def rfc3339_utc(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


UtcTimestamp = Annotated[datetime, PlainSerializer(rfc3339_utc, return_type=str)]
PointValue = float | bool | str | None


AggregateFn = Literal["avg", "min", "max", "sum", "count"]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class TelemetryPointOut(_Out):
    device_id: uuid.UUID
    key: str
    ts: UtcTimestamp
    value: PointValue
    unit: str | None
    quality: str | None


class RawTelemetryPage(_Out):
    device_id: uuid.UUID
    key: str | None
    start: UtcTimestamp
    end: UtcTimestamp
    points: list[TelemetryPointOut]
    # Pass back as `cursor` for the next (older) page; null on the last page.
    next_cursor: str | None


class LatestTelemetry(_Out):
    device_id: uuid.UUID | None
    values: list[TelemetryPointOut]
    # True when the tenant holds more series than `limit` (tenant-wide query only).
    truncated: bool


class AggregateBucket(_Out):
    ts: UtcTimestamp
    value: float | None
    count: int


class AggregateResult(_Out):
    device_id: uuid.UUID
    key: str
    fn: AggregateFn
    interval: str
    start: UtcTimestamp
    end: UtcTimestamp
    # Buckets without numeric points are omitted; each `ts` is the bucket's start (UTC-aligned).
    buckets: list[AggregateBucket]


@dataclass(frozen=True)
class RenderedAggregate:
    """An aggregate answer whose buckets the database already rendered as a JSON array."""

    meta: AggregateResult  # with an empty `buckets` list
    buckets_json: str

    def to_json(self) -> bytes:
        head = self.meta.model_dump_json(exclude={"buckets"})
        return f'{head[:-1]},"buckets":{self.buckets_json}}}'.encode()


class TelemetryStatistics(_Out):
    device_id: uuid.UUID
    key: str
    start: UtcTimestamp
    end: UtcTimestamp
    count: int
    mean: float | None
    min: float | None
    max: float | None
    # Sample standard deviation; null with fewer than two points.
    stddev: float | None
    p50: float | None
    p90: float | None
    p95: float | None
    p99: float | None
