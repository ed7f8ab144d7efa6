"""The ingest wire format: one set of pydantic models is both the parser and the OpenAPI
schema of `POST /telemetry`.

Two body shapes are accepted:

- single: `{"device_id"?, "timestamp"?, "telemetry": {key: value}}`
- batch:  `{"device_id"?, "points": [{"device_id"?, "ts"?, "values": {key: value}}]}`

A value is a number, a boolean, a short string, or `{"value": ..., "unit"?, "quality"?}`.
Timestamps are RFC 3339 strings with an offset, or epoch milliseconds; absent means the
server's time. Validation collects the problems of every point (a point's first invalid key or
value) with the index of the point, so one refusal lists all offending points; nothing is
written unless every point is valid. What depends on the request (`IngestBounds`: a device
token's own device, checked during validation; the future and retention bounds, checked when
the points become columns, or on the refused body's well-formed timestamps) is reported the
same way. MQTT and the ThingsBoard HTTP device API hand over decoded points (`PointIn`),
validated by `parse_points` with the same value and timestamp rules.
"""

from __future__ import annotations

import math
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import chain, repeat
from typing import Annotated, Any, Literal, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    GetCoreSchemaHandler,
    PlainValidator,
    Strict,
    StringConstraints,
    Tag,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError, core_schema

from iiot.errors import PayloadTooLarge
from iiot.validation import MAX_DATETIME, datetime_problem

MAX_POINTS = 10_000
MAX_BODY_BYTES = 5 * 1024 * 1024
MAX_KEY_LENGTH = 255
MAX_STRING_VALUE_LENGTH = 255
MAX_UNIT_LENGTH = 32
MAX_QUALITY_LENGTH = 32
MAX_REPORTED_ERRORS = 100
FUTURE_TOLERANCE = timedelta(minutes=10)
# Epoch milliseconds accepted: the bounds of every accepted datetime.
_MAX_EPOCH_MS = int((MAX_DATETIME - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1000) - 1

_RFC3339_PATTERN = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
_RFC3339 = re.compile(_RFC3339_PATTERN)
_MAX_RFC3339_LENGTH = 40
_NO_NUL = r"^[^\x00]*$"
_UUID_PATTERN = r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$"
_UUID = re.compile(_UUID_PATTERN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_VALUE_REASON = "value must be a number, boolean or string"
_TIME_REASON = "timestamp must be an RFC 3339 string or integer epoch milliseconds"
_MILLISECOND = timedelta(milliseconds=1)


def _from_epoch_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


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

    def distinct_devices(self) -> list[uuid.UUID]:
        """The rows' devices, each once, in order of first appearance. A batch usually names
        one device, the same object in every row: then no row's id is hashed (`UUID.__hash__`
        is Python code, and a thousand calls per batch showed in the profile)."""
        ids = self.device_ids
        if not ids:
            return []
        if ids.count(ids[0]) == len(ids):  # compared by identity first: cheap
            return [ids[0]]
        return list(dict.fromkeys(ids))

    def points_per_device(self) -> dict[uuid.UUID, int]:
        devices = self.distinct_devices()
        if len(devices) == 1:
            return {devices[0]: len(self.device_ids)}
        return dict(Counter(self.device_ids))


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
    (MQTT, the ThingsBoard HTTP device API); `parse_points` validates them with the same
    value and timestamp rules as a body."""

    ts: datetime
    values: dict[str, TelemetryValue]


class IngestAccepted(BaseModel):
    points: int = Field(description="Points stored by this request")
    duplicates: int = Field(description="Points already stored (same device, key, timestamp)")


@dataclass(frozen=True, slots=True)
class IngestBounds:
    """What validation checks against the request: the latest and oldest accepted timestamps
    and, for a device token, the only device it may write."""

    latest: datetime
    oldest: datetime | None
    own_device: uuid.UUID | None

    @property
    def latest_ms(self) -> int:
        return (self.latest - _EPOCH) // _MILLISECOND

    @property
    def oldest_ms(self) -> int:
        return 0 if self.oldest is None else -((_EPOCH - self.oldest) // _MILLISECOND)


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
        problem = datetime_problem(parsed)
        return problem if problem is not None else parsed.astimezone(UTC)
    if isinstance(raw, int) and not isinstance(raw, bool):
        if raw < 0 or raw > _MAX_EPOCH_MS:
            return "epoch milliseconds out of range"
        return _from_epoch_ms(raw)
    if isinstance(raw, float) and math.isfinite(raw) and raw.is_integer():
        return _parse_ts(int(raw))
    return "timestamp must be an RFC 3339 string or integer epoch milliseconds"


def _device(raw: object, info: ValidationInfo) -> uuid.UUID | None:
    """A device id in its canonical form (a device token may name only its own device)."""
    if raw is None:
        return None
    if not isinstance(raw, str) or not _UUID.match(raw):
        raise PydanticCustomError("device_id", "device_id must be a UUID string")
    device_id = uuid.UUID(raw)
    bounds = info.context
    if (
        isinstance(bounds, IngestBounds)
        and bounds.own_device is not None
        and device_id != bounds.own_device
    ):
        raise PydanticCustomError("device_id", "a device token may write only its own device")
    return device_id


def _key_names(schema: dict[str, Any]) -> None:
    """JSON Schema of a values object: the key rules belong to `propertyNames` (pydantic puts
    a key pattern into `patternProperties`, which would let any other key through)."""
    patterns = schema.pop("patternProperties", None)
    if patterns:
        ((pattern, value_schema),) = patterns.items()
        schema.setdefault("propertyNames", {})["pattern"] = pattern
        schema["additionalProperties"] = value_schema


@dataclass(frozen=True, slots=True)
class _OneError:
    """A union that matches none of its members is one error, not one per member (a body of
    10,000 invalid points stays cheap to refuse); the reason is found from the input."""

    kind: str
    message: str

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        schema = handler(source)
        assert schema["type"] == "union"
        return {**schema, "custom_error_type": self.kind, "custom_error_message": self.message}


# On the wire a timestamp is an RFC 3339 string with an offset or integer epoch milliseconds
# (JSON Schema's "integer" admits 1.0, so does the parser); it becomes a datetime, checked
# against the request's bounds, when the points become rows (`_Columns.times`).
Timestamp = Annotated[
    Annotated[
        str,
        Strict(),
        StringConstraints(max_length=_MAX_RFC3339_LENGTH, pattern=_RFC3339_PATTERN),
    ]
    | Annotated[int, Strict(), Field(ge=0, le=_MAX_EPOCH_MS)]
    | Annotated[float, Strict(), Field(ge=0, le=_MAX_EPOCH_MS, multiple_of=1)],
    _OneError("timestamp", _TIME_REASON),
    WithJsonSchema(
        {
            "oneOf": [
                {
                    "type": "string",
                    "format": "date-time",
                    "maxLength": _MAX_RFC3339_LENGTH,
                    "pattern": _RFC3339_PATTERN,
                },
                {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": _MAX_EPOCH_MS,
                    "description": "epoch milliseconds",
                },
            ]
        }
    ),
]
# The canonical form only (what JSON Schema's "uuid" format accepts).
DeviceRef = Annotated[
    uuid.UUID | None,
    PlainValidator(
        _device,
        json_schema_input_type=Annotated[
            str,
            StringConstraints(pattern=_UUID_PATTERN),
            Field(json_schema_extra={"format": "uuid"}),
        ]
        | None,
    ),
]
Key = Annotated[
    str, Strict(), StringConstraints(min_length=1, max_length=MAX_KEY_LENGTH, pattern=_NO_NUL)
]
Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]
Flag = Annotated[bool, Strict()]
Text = Annotated[
    str, Strict(), StringConstraints(max_length=MAX_STRING_VALUE_LENGTH, pattern=_NO_NUL)
]


class ValueWithUnit(BaseModel):
    """A value with its unit and quality (both optional)."""

    model_config = ConfigDict(extra="forbid")

    value: Number | Flag | Text
    unit: (
        Annotated[str, Strict(), StringConstraints(max_length=MAX_UNIT_LENGTH, pattern=_NO_NUL)]
        | None
    ) = None
    quality: (
        Annotated[str, Strict(), StringConstraints(max_length=MAX_QUALITY_LENGTH, pattern=_NO_NUL)]
        | None
    ) = None


Value = Number | Flag | Text | ValueWithUnit
_VALUE = TypeAdapter(Value)
# A point's first invalid key or value is its error (every invalid point is still listed): the
# cost of refusing a body stays bounded by its number of points.
Values = Annotated[
    dict[Key, Annotated[Value, _OneError("value", _VALUE_REASON)]],
    Field(min_length=1, fail_fast=True, json_schema_extra=_key_names),
]


class SingleIngest(BaseModel):
    """One point: `telemetry` values at `timestamp` (absent: the server's time)."""

    model_config = ConfigDict(extra="forbid", title="Single message")

    device_id: DeviceRef = None
    timestamp: Timestamp | None = None
    telemetry: Values


class BatchPoint(BaseModel):
    model_config = ConfigDict(extra="forbid", title="Batch point")

    device_id: DeviceRef = None
    ts: Timestamp | None = None
    values: Values


class BatchIngest(BaseModel):
    """Up to 10,000 points; `device_id` is the default of points without one."""

    model_config = ConfigDict(extra="forbid", title="Batch")

    device_id: DeviceRef = None
    points: Annotated[list[BatchPoint], Field(min_length=1, max_length=MAX_POINTS)]


def _shape(body: Any) -> Literal["single", "batch"] | None:
    if isinstance(body, dict):
        if "points" in body:
            return "batch"
        if "telemetry" in body:
            return "single"
    return None


IngestBody = Annotated[
    Annotated[SingleIngest, Tag("single")] | Annotated[BatchIngest, Tag("batch")],
    Discriminator(
        _shape,
        custom_error_type="body",
        custom_error_message="expected 'telemetry' (single point) or 'points' (batch)",
    ),
]
_BODY = TypeAdapter(IngestBody)
# The values of `PointIn`s (`parse_points`).
_VALUES = TypeAdapter(list[Values])


def _inline_refs(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline_refs(defs[ref.removeprefix("#/$defs/")], defs)
        return {
            k: _inline_refs(v, defs)
            for k, v in node.items()
            if k != "$defs" and not (k == "default" and v is None)
        }
    if isinstance(node, list):
        return [_inline_refs(v, defs) for v in node]
    return node


def ingest_body_schema() -> dict[str, Any]:
    """The JSON Schema of an ingest body, self-contained (for the route's OpenAPI entry; an
    absent field is left out, so no `"default": null`)."""
    schema = _BODY.json_schema()
    return _inline_refs(schema, schema.get("$defs", {}))  # type: ignore[no-any-return]


_VALUE_FIELDS = {"values", "telemetry"}
_TIME_FIELDS = {"ts", "timestamp"}
_OBJECT_VALUE = ValueWithUnit.__name__
_TEXT_KINDS = {"string_too_long", "string_pattern_mismatch"}


def _value_reason(field_name: str, failures: list[tuple[str, tuple[Any, ...], str]]) -> PointError:
    """One reason for a value that matched none of the value types (the union reports a
    mismatch per type): the one that explains what the sender meant."""
    kinds = {kind for _, _, kind in failures}
    as_object = [(sub, kind) for member, sub, kind in failures if member == _OBJECT_VALUE]
    as_object = [(sub, kind) for sub, kind in as_object if kind != "model_type"]
    if as_object:
        sub, kind = as_object[0]
        if sub and sub[0] in ("unit", "quality") and kind != "extra_forbidden":
            return PointError(None, f"{field_name}.{sub[0]}", f"{sub[0]} must be a short string")
        if kind in ("missing", "extra_forbidden"):
            reason = "an object value needs 'value' and may have only 'unit' and 'quality'"
            return PointError(None, field_name, reason)
        kinds = {kind for _, kind in as_object}
    if "finite_number" in kinds:
        return PointError(None, field_name, "NaN and Infinity are not allowed")
    if kinds & _TEXT_KINDS:
        return PointError(None, field_name, "strings: at most 255 characters, no NUL")
    return PointError(None, field_name, _VALUE_REASON)


_REASONS = {
    "dict_type": "must be an object of key: value",
    "list_type": "must be a non-empty list",
    "missing": "is required",
}


def _field_reason(field_name: str, kind: str, message: str) -> tuple[str, str]:
    if kind == "too_short":
        if field_name == "points":
            return field_name, "must be a non-empty list"
        return field_name, "must contain at least one value"
    if kind == "model_type":
        return field_name, "must be a JSON object"
    return field_name, _REASONS.get(kind, message)


def _point_errors(exc: ValidationError, *, of_values: bool = False) -> list[PointError]:
    """The validation errors as `PointError`s: index of the point, field, reason (`of_values`:
    of a list of points' values, located as the values of a batch's points)."""
    errors: list[PointError] = []
    timed: set[tuple[int | None, str]] = set()
    for err in exc.errors(include_url=False, include_context=False):
        loc, kind, message = err["loc"], err["type"], err["msg"]
        if of_values:
            loc = ("batch", "points", loc[0], "values", *loc[1:])
        if not loc:
            errors.append(PointError(None, "body", message))
            continue
        rest = loc[1:]
        index: int | None = 0 if loc[0] == "single" else None
        container = "body"
        if loc[0] == "batch" and len(rest) >= 2 and rest[0] == "points":
            index, rest, container = rest[1], rest[2:], "points"  # type: ignore[assignment]
            if not rest:
                reason = "each point must be an object" if kind == "model_type" else message
                errors.append(PointError(index, "points", reason))
                continue
        if kind == "extra_forbidden" and len(rest) == 1:
            name = str(rest[0])[:200]
            reason = f"unknown field: {name}"
            if container == "points" and name == "timestamp":
                reason += " (a batch point's time is 'ts')"
            where = index if container == "points" else None
            errors.append(PointError(where, container, reason))
            continue
        if rest and rest[0] in _TIME_FIELDS:
            # One reason per timestamp, not one per wire form it failed to match.
            found = _parse_ts(err["input"]) if kind == "timestamp" else message
            reason = found if isinstance(found, str) else _TIME_REASON
            if (index, rest[0]) not in timed:
                timed.add((index, str(rest[0])))
                errors.append(PointError(index, str(rest[0]), reason))
            continue
        if len(rest) == 3 and rest[0] in _VALUE_FIELDS and rest[2] == "[key]":
            reason = "key must be 1-255 characters, no NUL"
            errors.append(PointError(index, f"{rest[0]}.{str(rest[1])[:40]}", reason))
            continue
        if len(rest) == 2 and rest[0] in _VALUE_FIELDS and kind == "value":
            field_name = f"{rest[0]}.{rest[1]}"
            if len(errors) < MAX_REPORTED_ERRORS:  # only these are shown
                errors.append(_refused_value(index, field_name, err["input"]))
            else:
                errors.append(PointError(index, field_name, _VALUE_REASON))
            continue
        field_name = ".".join(str(part) for part in rest) or container
        field_name, reason = _field_reason(field_name, kind, message)
        errors.append(PointError(index, field_name, reason))
    return errors


def _refused_value(index: int | None, field_name: str, raw: Any) -> PointError:
    """Why a value was refused: its errors against each value type, explained."""
    try:
        _VALUE.validate_python(raw)
    except ValidationError as exc:
        failures = [
            (str(e["loc"][0]), tuple(e["loc"][1:]), e["type"])
            for e in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
        described = _value_reason(field_name, failures)
        described.index = index
        return described
    return PointError(index, field_name, _VALUE_REASON)


def _missing_devices(body: dict[str, Any], bounds: IngestBounds) -> list[PointError]:
    """A user's ingest names the device: of the single point, or of the batch or each point."""
    if bounds.own_device is not None or _shape(body) is None:
        return []
    reason = "device_id is required for a user's ingest"
    if "points" not in body:
        return [] if body.get("device_id") is not None else [PointError(0, "device_id", reason)]
    points = body["points"]
    if body.get("device_id") is not None or not isinstance(points, list):
        return []
    return [
        PointError(i, "device_id", reason)
        for i, point in enumerate(points)
        if isinstance(point, dict) and point.get("device_id") is None
    ]


def _time(raw: object, bounds: IngestBounds) -> datetime | str:
    """A validated wire timestamp (or a `PointIn`'s datetime) as a datetime within the
    request's bounds, or the reason it is refused."""
    ts = _parse_ts(raw)
    if isinstance(ts, str):
        return ts
    if ts > bounds.latest:
        return "timestamp is more than 10 minutes in the future"
    if bounds.oldest is not None and ts < bounds.oldest:
        return "timestamp is older than the tenant's retention"
    return ts


def _raw_time_errors(
    body: dict[str, Any], bounds: IngestBounds, reported: set[tuple[int | None, str]]
) -> list[PointError]:
    """Timestamp bounds of a refused body's points whose timestamp itself was well-formed,
    so that one refusal lists every offending point."""
    if "points" in body:
        points = body["points"]
        located = [
            (i, "ts", point.get("ts"))
            for i, point in enumerate(points if isinstance(points, list) else [])
            if isinstance(point, dict)
        ]
    else:
        located = [(0, "timestamp", body.get("timestamp"))]
    errors = []
    for index, field_name, raw in located:
        if raw is None or (index, field_name) in reported:
            continue
        found = _time(raw, bounds)
        if isinstance(found, str):
            errors.append(PointError(index, field_name, found))
    return errors


class _Columns:
    """Validated points as `Rows`: whole columns at a time (no per-value Python work when every
    value is a plain number, the common case)."""

    def __init__(self, now: datetime, bounds: IngestBounds) -> None:
        self.now = now
        self.bounds = bounds
        self.errors: list[PointError] = []

    def times(self, raws: list[Any], field_name: str) -> list[datetime]:
        """The points' datetimes (absent: now); refusals go to `errors`."""
        bounds = self.bounds
        # Epoch milliseconds only (the common batch): bounds compared as integers.
        if (
            raws
            and set(map(type, raws)) == {int}
            and min(raws) >= bounds.oldest_ms
            and max(raws) <= bounds.latest_ms
        ):
            return list(map(_EPOCH.__add__, map(_MILLISECOND.__mul__, raws)))
        out: list[datetime] = []
        for index, raw in enumerate(raws):
            found = self.now if raw is None else _time(raw, bounds)
            if isinstance(found, str):
                self.errors.append(PointError(index, field_name, found))
                found = self.now
            out.append(found)
        return out

    def build(
        self,
        devices: list[uuid.UUID],
        times: list[datetime],
        values: list[dict[str, float | bool | str | ValueWithUnit]],
    ) -> ParsedIngest:
        count = len(values)
        if self.errors or not count:
            return ParsedIngest(Rows(), self.errors, count)
        sizes = list(map(len, values))
        total = sum(sizes)
        flat = list(chain.from_iterable(map(dict.values, values)))
        rows = Rows(
            device_ids=(
                [devices[0]] * total
                if all(d is devices[0] for d in devices)
                else list(chain.from_iterable(map(repeat, devices, sizes)))
            ),
            keys=list(chain.from_iterable(values)),
            ts=list(chain.from_iterable(map(repeat, times, sizes))),
            point_index=list(chain.from_iterable(map(repeat, range(count), sizes))),
        )
        if set(map(type, flat)) == {float}:
            rows.nums = flat  # type: ignore[assignment]
            rows.bools = [None] * total
            rows.strs = [None] * total
            rows.units = [None] * total
            rows.qualities = [None] * total
        else:
            for raw in flat:
                unit = quality = None
                if type(raw) is ValueWithUnit:
                    unit, quality, raw = raw.unit, raw.quality, raw.value
                kind = type(raw)
                rows.nums.append(raw if kind is float else None)  # type: ignore[arg-type]
                rows.bools.append(raw if kind is bool else None)  # type: ignore[arg-type]
                rows.strs.append(raw if kind is str else None)  # type: ignore[arg-type]
                rows.units.append(unit)
                rows.qualities.append(quality)
        return ParsedIngest(rows, [], count, min(times), max(times))


def _bounds(now: datetime, oldest: datetime | None, own_device: uuid.UUID | None) -> IngestBounds:
    return IngestBounds(latest=now + FUTURE_TOLERANCE, oldest=oldest, own_device=own_device)


def _too_large(count: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"a batch holds at most {MAX_POINTS} points ({count} sent)", max_points=MAX_POINTS
    )


def _plain_batch(points: list[Any]) -> tuple[list[int], list[dict[str, Any]]] | None:
    """The timestamps and values of a device's batch in its most common form, when the models
    would accept it as it is: every point exactly `{"ts": <epoch ms>, "values": {<key>:
    <finite number with a fraction or exponent>, ...}}` with valid keys. None for anything
    else (the models then judge it). What the models would return for such a batch is its
    own integers and dicts, so the rows built from either are the same."""
    if not 0 < len(points) <= MAX_POINTS:
        return None
    times: list[int] = []
    values: list[dict[str, Any]] = []
    for point in points:
        if type(point) is not dict or len(point) != 2:
            return None
        ts = point.get("ts")
        vals = point.get("values")
        if type(ts) is not int or type(vals) is not dict or not vals:
            return None
        times.append(ts)
        values.append(vals)
    if min(times) < 0 or max(times) > _MAX_EPOCH_MS:
        return None
    flat = list(chain.from_iterable(map(dict.values, values)))
    if set(map(type, flat)) != {float} or not math.isfinite(sum(flat)):
        return None
    for key in set(chain.from_iterable(values)):
        if not 0 < len(key) <= MAX_KEY_LENGTH or "\x00" in key:
            return None
    return times, values


def parse_ingest(
    body: Any,
    *,
    now: datetime,
    oldest: datetime | None,
    own_device: uuid.UUID | None,
) -> ParsedIngest:
    """Validate a decoded body into rows; `own_device` is set for a device token's request."""
    if own_device is not None and type(body) is dict and len(body) == 1:
        points = body.get("points")
        # A device's own batch (no device ids to check) in the usual form is validated
        # without the models, with the same outcome as `parse_ingest_by_models` (proved by
        # tests/telemetry/test_ingest_schema.py): the models cost more than half of parsing.
        plain = _plain_batch(points) if type(points) is list else None
        if plain is not None:
            columns = _Columns(now, _bounds(now, oldest, own_device))
            times = columns.times(plain[0], "ts")
            return columns.build([own_device] * len(plain[1]), times, plain[1])
    return parse_ingest_by_models(body, now=now, oldest=oldest, own_device=own_device)


def parse_ingest_by_models(
    body: Any,
    *,
    now: datetime,
    oldest: datetime | None,
    own_device: uuid.UUID | None,
) -> ParsedIngest:
    """`parse_ingest` of any body, by the models alone (the reference of its plain path)."""
    if not isinstance(body, dict):
        return ParsedIngest(Rows(), [PointError(None, "body", "must be a JSON object")], 0)
    points = body.get("points")
    if isinstance(points, list) and len(points) > MAX_POINTS:
        raise _too_large(len(points))
    bounds = _bounds(now, oldest, own_device)
    missing = _missing_devices(body, bounds)
    count = len(points) if isinstance(points, list) else int("telemetry" in body)
    try:
        document = _BODY.validate_python(body, context=bounds)
    except ValidationError as exc:
        errors = _point_errors(exc)
        reported = {(e.index, e.field) for e in errors}
        errors += _raw_time_errors(body, bounds, reported) + missing
        return ParsedIngest(Rows(), errors, count)
    columns = _Columns(now, bounds)
    columns.errors += missing
    if isinstance(document, SingleIngest):
        device = document.device_id or own_device
        times = columns.times([document.timestamp], "timestamp")
        return columns.build([device] if device else [], times, [document.telemetry])
    default = document.device_id or own_device
    # Every point has a device here: `_missing_devices` refused the body otherwise.
    devices = cast(list[uuid.UUID], [p.device_id or default for p in document.points])
    times = columns.times([p.ts for p in document.points], "ts")
    return columns.build(devices, times, [p.values for p in document.points])


def parse_points(
    device_id: uuid.UUID,
    points: list[PointIn],
    *,
    now: datetime,
    oldest: datetime | None,
    own_device: uuid.UUID | None,
) -> ParsedIngest:
    """Validate points another transport decoded, with the value and timestamp rules of a body
    (errors indexed by point, as for a batch)."""
    if len(points) > MAX_POINTS:
        raise _too_large(len(points))
    bounds = _bounds(now, oldest, own_device)
    columns = _Columns(now, bounds)
    if own_device is not None and device_id != own_device:
        reason = "a device token may write only its own device"
        columns.errors.append(PointError(None, "device_id", reason))
    times = columns.times([p.ts for p in points], "ts")
    try:
        values = _VALUES.validate_python([p.values for p in points])
    except ValidationError as exc:
        columns.errors += _point_errors(exc, of_values=True)
        return ParsedIngest(Rows(), columns.errors, len(points))
    return columns.build([device_id] * len(points), times, values)
