"""Telemetry reads: raw pages, latest values, time-bucket aggregates and statistics.

Every query is bounded before it reaches the database: a time range no longer than the route's
maximum, at most `MAX_LIMIT` rows, at most `MAX_BUCKETS` buckets. A device of another tenant
is not found, exactly like a device that does not exist.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from iiot.db.session import TenantSession
from iiot.devices import service as devices
from iiot.devices.presence import Presence
from iiot.devices.schemas import DeviceDetail, LatestValue
from iiot.errors import BadRequest, NotFound, ValidationFailed
from iiot.telemetry.query_repository import PointRow, TelemetryQueryRepository
from iiot.telemetry.query_schemas import (
    AggregateFn,
    AggregateResult,
    LatestTelemetry,
    RawTelemetryPage,
    RenderedAggregate,
    TelemetryPointOut,
    TelemetryStatistics,
)
from iiot.telemetry.repository import LatestTelemetryRepository
from iiot.tenancy.context import TenantContext

MAX_LIMIT = 10_000
MAX_BUCKETS = 10_000
DEFAULT_RANGE = timedelta(hours=24)
MAX_RAW_RANGE = timedelta(days=31)
MAX_STATISTICS_RANGE = timedelta(days=31)
MAX_AGGREGATE_RANGE = timedelta(days=366)
# Ingest accepts points up to 10 minutes ahead of the server clock; a default range covers them.
FUTURE_TOLERANCE = timedelta(minutes=10)

_INTERVAL = re.compile(r"^([1-9][0-9]{0,5})([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime


def parse_interval(value: str) -> timedelta:
    """`30s`, `1m`, `5m`, `1h`, `1d`: a positive count and one unit."""
    match = _INTERVAL.match(value)
    if match is None:
        raise ValidationFailed(
            "interval must be a positive number followed by s, m, h or d (e.g. 1m, 5m, 1h, 1d)",
            errors=[{"field": "interval", "in": "query", "message": "invalid interval"}],
        )
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds > 366 * 86400:
        raise ValidationFailed("interval must not exceed 366 days")
    return timedelta(seconds=seconds)


def resolve_range(
    start: datetime | None, end: datetime | None, maximum: timedelta, now: datetime | None = None
) -> TimeRange:
    """[start, end): end defaults to now (plus the ingest's future tolerance), start to a day
    before end."""
    end = (end or (now or datetime.now(UTC)) + FUTURE_TOLERANCE).astimezone(UTC)
    start = (start or end - DEFAULT_RANGE).astimezone(UTC)
    if start >= end:
        raise ValidationFailed("start must be before end")
    if end - start > maximum:
        raise ValidationFailed(f"the time range must not exceed {maximum.days} days")
    return TimeRange(start, end)


def encode_cursor(point: PointRow) -> str:
    raw = json.dumps({"ts": point.ts.astimezone(UTC).isoformat(), "k": point.key})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        ts = datetime.fromisoformat(data["ts"])
        key = data["k"]
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError) as exc:
        raise BadRequest("invalid cursor") from exc
    if ts.tzinfo is None or not isinstance(key, str):
        raise BadRequest("invalid cursor")
    return ts, key


async def _require_device(repo: TelemetryQueryRepository, device_id: uuid.UUID) -> None:
    if not await repo.device_exists(device_id):
        raise NotFound("device not found")


async def raw_points(
    session: TenantSession,
    ctx: TenantContext,
    *,
    device_id: uuid.UUID,
    key: str | None,
    start: datetime | None,
    end: datetime | None,
    limit: int,
    cursor: str | None,
) -> RawTelemetryPage:
    window = resolve_range(start, end, MAX_RAW_RANGE)
    after = decode_cursor(cursor) if cursor else None
    repo = TelemetryQueryRepository(session, ctx)
    await _require_device(repo, device_id)
    rows = await repo.raw(device_id, key, window.start, window.end, after, limit + 1)
    page, more = rows[:limit], len(rows) > limit
    return RawTelemetryPage(
        device_id=device_id,
        key=key,
        start=window.start,
        end=window.end,
        points=[TelemetryPointOut.model_validate(r) for r in page],
        next_cursor=encode_cursor(page[-1]) if more and page else None,
    )


async def latest_values(
    session: TenantSession, ctx: TenantContext, *, device_id: uuid.UUID | None, limit: int
) -> LatestTelemetry:
    repo = TelemetryQueryRepository(session, ctx)
    if device_id is not None:
        await _require_device(repo, device_id)
        rows = await repo.latest_for_device(device_id, limit + 1)
    else:
        rows = await repo.latest_for_tenant(limit + 1)
    return LatestTelemetry(
        device_id=device_id,
        values=[TelemetryPointOut.model_validate(r) for r in rows[:limit]],
        truncated=len(rows) > limit,
    )


async def aggregate(
    session: TenantSession,
    ctx: TenantContext,
    *,
    device_id: uuid.UUID,
    key: str,
    start: datetime | None,
    end: datetime | None,
    interval: str,
    fn: AggregateFn,
) -> RenderedAggregate:
    width = parse_interval(interval)
    window = resolve_range(start, end, MAX_AGGREGATE_RANGE)
    buckets = -(-(window.end - window.start) // width) + 1  # partial buckets at both edges
    if buckets > MAX_BUCKETS:
        raise ValidationFailed(
            f"{interval} buckets over this range would be {buckets}; at most {MAX_BUCKETS} "
            "are allowed: use a larger interval or a shorter range"
        )
    repo = TelemetryQueryRepository(session, ctx)
    await _require_device(repo, device_id)
    buckets_json = await repo.aggregate(device_id, key, window.start, window.end, width, fn)
    meta = AggregateResult(
        device_id=device_id,
        key=key,
        fn=fn,
        interval=interval,
        start=window.start,
        end=window.end,
        buckets=[],
    )
    return RenderedAggregate(meta=meta, buckets_json=buckets_json)


async def statistics(
    session: TenantSession,
    ctx: TenantContext,
    *,
    device_id: uuid.UUID,
    key: str,
    start: datetime | None,
    end: datetime | None,
) -> TelemetryStatistics:
    window = resolve_range(start, end, MAX_STATISTICS_RANGE)
    repo = TelemetryQueryRepository(session, ctx)
    await _require_device(repo, device_id)
    row = await repo.statistics(device_id, key, window.start, window.end)
    p50, p90, p95, p99 = row.percentiles
    return TelemetryStatistics(
        device_id=device_id,
        key=key,
        start=window.start,
        end=window.end,
        count=row.count,
        mean=row.mean,
        min=row.min,
        max=row.max,
        stddev=row.stddev,
        p50=p50,
        p90=p90,
        p95=p95,
        p99=p99,
    )


async def device_detail(
    session: TenantSession, ctx: TenantContext, device_id: uuid.UUID, *, presence: Presence
) -> DeviceDetail:
    """One device with the latest value of each of its keys. Composed here, above both: the
    device comes from iiot.devices, which telemetry builds on."""
    device = await devices.get_device(session, ctx, device_id, presence=presence)
    latest = await LatestTelemetryRepository(session, ctx).for_device(device_id)
    return DeviceDetail(
        **device.model_dump(),
        latest_telemetry={
            p.key: LatestValue(value=p.value, ts=p.ts, unit=p.unit, quality=p.quality)
            for p in latest
        },
    )
