"""The ingest wire format, parsed by hand into columns (this is the hot path).

Two body shapes are accepted:

- single: `{"device_id"?, "timestamp"?, "telemetry": {key: value}}`
- batch:  `{"device_id"?, "points": [{"device_id"?, "ts"?, "values": {key: value}}]}`

A value is a number, a boolean, a short string, or `{"value": ..., "unit"?, "quality"?}`.
Timestamps are RFC 3339 strings with an offset, or epoch milliseconds; absent means the
server's time. Every problem is collected with the index of its point, so one refusal lists
all offending points; nothing is written unless every point is valid.
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from iiot.errors import PayloadTooLarge

MAX_POINTS = 10_000
MAX_BODY_BYTES = 5 * 1024 * 1024
MAX_KEY_LENGTH = 255
MAX_STRING_VALUE_LENGTH = 255
MAX_UNIT_LENGTH = 32
MAX_QUALITY_LENGTH = 32
MAX_REPORTED_ERRORS = 100
FUTURE_TOLERANCE = timedelta(minutes=10)
# Epoch milliseconds accepted: 1970-01-01 .. 9999-12-31.
_MAX_EPOCH_MS = 253_402_300_799_999

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class PointError:
    index: int | None
    field: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "reason": self.reason}


@dataclass(slots=True)
class Rows:
    """Columns of the rows to insert, one entry per (device, key, timestamp)."""

    device_ids: list[uuid.UUID] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    ts: list[datetime] = field(default_factory=list)
    nums: list[float | None] = field(default_factory=list)
    bools: list[bool | None] = field(default_factory=list)
    strs: list[str | None] = field(default_factory=list)
    units: list[str | None] = field(default_factory=list)
    qualities: list[str | None] = field(default_factory=list)
    # The index of the request point each row came from (for error reports).
    point_index: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.keys)


@dataclass(slots=True)
class ParsedIngest:
    rows: Rows
    errors: list[PointError]
    point_count: int
    min_ts: datetime | None = None
    max_ts: datetime | None = None


TelemetryValue = float | bool | str


@dataclass(frozen=True, slots=True)
class PointIn:
    """Values of one device at one time, from a transport other than the JSON ingest body
    (MQTT, the ThingsBoard HTTP device API); `ingest.prepare_points` validates them exactly as
    it validates a body."""

    ts: datetime
    values: dict[str, TelemetryValue]


class IngestAccepted(BaseModel):
    points: int = Field(description="Points stored by this request")
    duplicates: int = Field(description="Points already stored (same device, key, timestamp)")


def _parse_ts(raw: Any) -> datetime | str:
    """A timestamp, or the reason it is refused."""
    if type(raw) is datetime and raw.tzinfo is not None:
        return raw.astimezone(UTC)  # already decoded by another transport (`PointIn`)
    if isinstance(raw, str):
        if len(raw) > 40 or not _RFC3339.match(raw):
            return "timestamp must be RFC 3339 with an offset (e.g. 2026-01-02T03:04:05Z)"
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            return "timestamp is not a valid date and time"
        return parsed.astimezone(UTC)
    if isinstance(raw, int) and not isinstance(raw, bool):
        if raw < 0 or raw > _MAX_EPOCH_MS:
            return "epoch milliseconds out of range"
        return _EPOCH + timedelta(milliseconds=raw)
    if isinstance(raw, float) and math.isfinite(raw) and raw.is_integer():
        return _parse_ts(int(raw))
    return "timestamp must be an RFC 3339 string or integer epoch milliseconds"


def _device_id(raw: Any) -> uuid.UUID | str:
    if not isinstance(raw, str) or len(raw) > 64:
        return "device_id must be a UUID string"
    try:
        return uuid.UUID(raw)
    except ValueError:
        return "device_id must be a UUID string"


class _Parser:
    def __init__(
        self,
        now: datetime,
        oldest: datetime | None,
        own_device: uuid.UUID | None,
    ) -> None:
        self.now = now
        self.latest = now + FUTURE_TOLERANCE
        self.oldest = oldest
        self.own_device = own_device
        self.rows = Rows()
        self.errors: list[PointError] = []
        self.min_ts: datetime | None = None
        self.max_ts: datetime | None = None
        self._device_cache: dict[str, uuid.UUID | str] = {}

    def error(self, index: int | None, field_name: str, reason: str) -> None:
        self.errors.append(PointError(index, field_name, reason))

    def device(self, index: int | None, raw: Any, default: uuid.UUID | None) -> uuid.UUID | None:
        if raw is None:
            if default is None:
                self.error(index, "device_id", "device_id is required for a user's ingest")
            return default
        cached = self._device_cache.get(raw) if isinstance(raw, str) else None
        found = cached if cached is not None else _device_id(raw)
        if isinstance(raw, str):
            self._device_cache[raw] = found
        if isinstance(found, str):
            self.error(index, "device_id", found)
            return None
        if self.own_device is not None and found != self.own_device:
            self.error(index, "device_id", "a device token may write only its own device")
            return None
        return found

    def timestamp(self, index: int | None, raw: Any, field_name: str) -> datetime | None:
        if raw is None:
            return self.now
        ts = _parse_ts(raw)
        if isinstance(ts, str):
            self.error(index, field_name, ts)
            return None
        if ts > self.latest:
            self.error(index, field_name, "timestamp is more than 10 minutes in the future")
            return None
        if self.oldest is not None and ts < self.oldest:
            self.error(index, field_name, "timestamp is older than the tenant's retention")
            return None
        return ts

    def values(
        self,
        index: int,
        values: Any,
        device_id: uuid.UUID | None,
        ts: datetime | None,
        field_name: str,
    ) -> None:
        if not isinstance(values, dict):
            self.error(index, field_name, "must be an object of key: value")
            return
        if not values:
            self.error(index, field_name, "must contain at least one value")
            return
        ok = device_id is not None and ts is not None
        rows = self.rows
        for key, raw in values.items():
            if not key or len(key) > MAX_KEY_LENGTH or "\x00" in key:
                self.error(
                    index, f"{field_name}.{key[:40]}", "key must be 1-255 characters, no NUL"
                )
                ok = False
                continue
            unit = quality = None
            if isinstance(raw, dict):
                unit = raw.get("unit")
                quality = raw.get("quality")
                extra = raw.keys() - {"value", "unit", "quality"}
                if extra or "value" not in raw:
                    self.error(
                        index,
                        f"{field_name}.{key}",
                        "an object value needs 'value' and may have only 'unit' and 'quality'",
                    )
                    ok = False
                    continue
                if unit is not None and (
                    not isinstance(unit, str) or len(unit) > MAX_UNIT_LENGTH or "\x00" in unit
                ):
                    self.error(index, f"{field_name}.{key}.unit", "unit must be a short string")
                    ok = False
                    continue
                if quality is not None and (
                    not isinstance(quality, str)
                    or len(quality) > MAX_QUALITY_LENGTH
                    or "\x00" in quality
                ):
                    self.error(
                        index, f"{field_name}.{key}.quality", "quality must be a short string"
                    )
                    ok = False
                    continue
                raw = raw["value"]
            num: float | None = None
            flag: bool | None = None
            text: str | None = None
            kind = type(raw)
            if kind is float:
                if not math.isfinite(raw):
                    self.error(index, f"{field_name}.{key}", "NaN and Infinity are not allowed")
                    ok = False
                    continue
                num = raw
            elif kind is int:
                num = float(raw)
            elif kind is bool:
                flag = raw
            elif kind is str:
                if len(raw) > MAX_STRING_VALUE_LENGTH or "\x00" in raw:
                    self.error(
                        index, f"{field_name}.{key}", "strings: at most 255 characters, no NUL"
                    )
                    ok = False
                    continue
                text = raw
            else:
                self.error(
                    index, f"{field_name}.{key}", "value must be a number, boolean or string"
                )
                ok = False
                continue
            if ok:
                rows.device_ids.append(device_id)  # type: ignore[arg-type]
                rows.keys.append(key)
                rows.ts.append(ts)  # type: ignore[arg-type]
                rows.nums.append(num)
                rows.bools.append(flag)
                rows.strs.append(text)
                rows.units.append(unit)
                rows.qualities.append(quality)
                rows.point_index.append(index)
        if ok and ts is not None:
            if self.min_ts is None or ts < self.min_ts:
                self.min_ts = ts
            if self.max_ts is None or ts > self.max_ts:
                self.max_ts = ts


_SINGLE_FIELDS = {"device_id", "timestamp", "telemetry"}
_BATCH_FIELDS = {"device_id", "points"}
_POINT_FIELDS = {"device_id", "ts", "timestamp", "values"}


def parse_ingest(
    body: Any,
    *,
    now: datetime,
    oldest: datetime | None,
    own_device: uuid.UUID | None,
) -> ParsedIngest:
    """Validate a decoded body into rows; `own_device` is set for a device token's request."""
    parser = _Parser(now, oldest, own_device)
    if not isinstance(body, dict):
        parser.error(None, "body", "must be a JSON object")
        return ParsedIngest(parser.rows, parser.errors, 0)
    if "points" in body:
        unknown = body.keys() - _BATCH_FIELDS
        if unknown:
            parser.error(None, "body", f"unknown fields: {', '.join(sorted(unknown))[:200]}")
        points = body["points"]
        if not isinstance(points, list) or not points:
            parser.error(None, "points", "must be a non-empty list")
            return ParsedIngest(parser.rows, parser.errors, 0)
        if len(points) > MAX_POINTS:
            raise PayloadTooLarge(
                f"a batch holds at most {MAX_POINTS} points ({len(points)} sent)",
                max_points=MAX_POINTS,
            )
        default_device = own_device
        if "device_id" in body:
            default_device = parser.device(None, body["device_id"], own_device)
        for i, point in enumerate(points):
            if not isinstance(point, dict):
                parser.error(i, "points", "each point must be an object")
                continue
            if point.keys() - _POINT_FIELDS:
                parser.error(i, "points", "a point has only device_id, ts and values")
                continue
            device_id = parser.device(i, point.get("device_id"), default_device)
            ts_field = "ts" if "ts" in point else "timestamp"
            ts = parser.timestamp(i, point.get(ts_field), ts_field)
            parser.values(i, point.get("values"), device_id, ts, "values")
        count = len(points)
    elif "telemetry" in body:
        unknown = body.keys() - _SINGLE_FIELDS
        if unknown:
            parser.error(None, "body", f"unknown fields: {', '.join(sorted(unknown))[:200]}")
        device_id = parser.device(0, body.get("device_id"), own_device)
        ts = parser.timestamp(0, body.get("timestamp"), "timestamp")
        parser.values(0, body["telemetry"], device_id, ts, "telemetry")
        count = 1
    else:
        parser.error(None, "body", "expected 'telemetry' (single point) or 'points' (batch)")
        count = 0
    return ParsedIngest(parser.rows, parser.errors, count, parser.min_ts, parser.max_ts)
