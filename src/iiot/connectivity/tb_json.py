"""The ThingsBoard device API's JSON forms, parsed into the ingest service's points.

Telemetry is `{"k": v}`, `{"ts": ms, "values": {"k": v}}`, or an array of either; a gateway
sends `{"Device name": [<telemetry>, …]}`. Values follow ThingsBoard's rules: a string that
reads as a plain decimal number (`"21.5"`, `"-3"`, `".5"`; no exponent, no sign `+`, no
trailing dot) is stored as a number, unless it is an integer beyond 64 bits (it stays a
string); a JSON object or array is
kept as its compact JSON text; `null` values are skipped. Every problem raises
`ValidationFailed` (422) naming the offending key, and nothing of that payload is stored.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from iiot.errors import ValidationFailed
from iiot.telemetry.schemas import PointIn, TelemetryValue

__all__ = [
    "PointIn",
    "cast_value",
    "decode_json",
    "parse_attributes",
    "parse_gateway_attributes",
    "parse_gateway_telemetry",
    "parse_telemetry",
]

_PARSABLE = re.compile(r"^-?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)$")
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TS_MS = 253_402_300_799_999


def decode_json(payload: bytes | str) -> Any:
    """The JSON document of a payload, or ValidationFailed."""
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise ValidationFailed(
            f"malformed JSON: {exc}", errors=[{"field": "body", "reason": "malformed JSON"}]
        ) from exc


def _invalid(key: str, reason: str) -> ValidationFailed:
    return ValidationFailed(f"{key}: {reason}", errors=[{"field": key[:100], "reason": reason}])


def cast_value(key: str, value: Any) -> Any:
    """A device-sent value as ThingsBoard stores it; None means "skip this key"."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if _PARSABLE.match(value):
            if "." in value:
                return float(value)
            number = int(value)
            if _LONG_MIN <= number <= _LONG_MAX:
                return number
        return value
    if isinstance(value, int):
        if not _LONG_MIN <= value <= _LONG_MAX:
            raise _invalid(key, "big integer values are not supported")
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, dict | list):
        return value
    raise _invalid(key, "unsupported value")


def _telemetry_value(key: str, value: Any) -> TelemetryValue | None:
    cast = cast_value(key, value)
    if isinstance(cast, dict | list):
        return orjson.dumps(cast).decode()
    if isinstance(cast, int) and not isinstance(cast, bool):
        return float(cast)
    return cast  # type: ignore[no-any-return]


def _values(obj: dict[str, Any]) -> dict[str, TelemetryValue]:
    out: dict[str, TelemetryValue] = {}
    for key, raw in obj.items():
        value = _telemetry_value(key, raw)
        if value is not None:
            out[key] = value
    return out


def _ts(raw: Any) -> datetime:
    if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
        raw = int(raw.strip())
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= MAX_TS_MS:
        raise _invalid("ts", "must be epoch milliseconds")
    return _EPOCH + timedelta(milliseconds=raw)


def _object_points(obj: dict[str, Any], received_at: datetime) -> PointIn | None:
    if "ts" in obj and "values" in obj:
        values = obj["values"]
        if not isinstance(values, dict):
            raise _invalid("values", "must be an object of key: value")
        parsed = _values(values)
        ts = _ts(obj["ts"])
    else:
        parsed = _values(obj)
        ts = received_at
    return PointIn(ts=ts, values=parsed) if parsed else None


def telemetry_points(document: Any, received_at: datetime) -> list[PointIn]:
    """Points of a decoded telemetry document."""
    items = document if isinstance(document, list) else [document]
    points: list[PointIn] = []
    for item in items:
        if not isinstance(item, dict):
            raise _invalid("body", "telemetry must be an object or an array of objects")
        point = _object_points(item, received_at)
        if point is not None:
            points.append(point)
    return points


def parse_telemetry(payload: bytes, received_at: datetime) -> list[PointIn]:
    """ThingsBoard telemetry (`{"k":v}`, `{"ts","values"}`, arrays of those) as points;
    values without a timestamp take `received_at`."""
    return telemetry_points(decode_json(payload), received_at)


def parse_gateway_telemetry(
    payload: bytes, received_at: datetime | None = None
) -> dict[str, list[PointIn]]:
    """`{"Device name": [{"ts": ms, "values": {…}} | {"k": v}, …]}` → points per device name."""
    document = decode_json(payload)
    if not isinstance(document, dict):
        raise _invalid("body", "must be an object of device name: telemetry")
    now = received_at or datetime.now(UTC)
    return {_device_name(name): telemetry_points(data, now) for name, data in document.items()}


def attribute_values(document: Any) -> dict[str, Any]:
    """Attributes of a decoded `{"k": v}` document (values cast like telemetry; null skipped)."""
    if not isinstance(document, dict):
        raise _invalid("body", "attributes must be a JSON object of key: value")
    out: dict[str, Any] = {}
    for key, raw in document.items():
        value = cast_value(key, raw)
        if value is not None:
            out[key] = value
    return out


def parse_attributes(payload: bytes) -> dict[str, Any]:
    """`{"k": v}` → the attribute values to store."""
    return attribute_values(decode_json(payload))


def parse_gateway_attributes(payload: bytes) -> dict[str, dict[str, Any]]:
    """`{"Device name": {"k": v}}` → attributes per device name."""
    document = decode_json(payload)
    if not isinstance(document, dict):
        raise _invalid("body", "must be an object of device name: attributes")
    return {_device_name(name): attribute_values(data) for name, data in document.items()}


def _device_name(name: str) -> str:
    stripped = name.strip()
    if not stripped or len(stripped) > 200:
        raise _invalid("device", "a device name is 1-200 characters")
    return stripped


def split_keys(raw: str | None) -> list[str] | None:
    """`"a,b"` → `["a", "b"]`; None or empty → None (all keys)."""
    if raw is None:
        return None
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    return keys or None


def attribute_request_keys(
    client_keys: str | None, shared_keys: str | None
) -> tuple[list[str] | None, list[str] | None]:
    """ThingsBoard's attribute request rule: no keys at all asks for every client and shared
    attribute; keys of one scope only ask for that scope alone. Returns `(client, shared)` for
    `service.read_attributes` (None = every key of that scope, [] = none)."""
    client = split_keys(client_keys)
    shared = split_keys(shared_keys)
    if client is None and shared is None:
        return None, None
    return client or [], shared or []
