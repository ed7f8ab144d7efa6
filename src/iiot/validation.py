"""Bounded input types shared by every route: free-form JSON, datetimes, limits.

Every free-form JSON field (`JsonObject`) and every datetime a caller may send
(`BoundedDatetime`) goes through one of these types, so a value the storage, the serialiser
or date arithmetic cannot handle is refused with 422 at validation time, before anything is
written. `tests/test_input_bounds.py` walks the app's routes and fails for a route that takes
a bare `dict`/`Any` or `datetime`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, AwareDatetime, Field, WithJsonSchema

# Free-form JSON: nesting depth (the object itself is depth 1) and serialised size.
MAX_JSON_DEPTH = 32
MAX_JSON_BYTES = 65_536
# Accepted datetimes: wide enough for any real timestamp, narrow enough that adding a day,
# a retention period or a time zone offset can never leave the calendar.
MIN_DATETIME = datetime(1970, 1, 1, tzinfo=UTC)
MAX_DATETIME = datetime(2200, 1, 1, tzinfo=UTC)
# Integer columns are 32-bit; retention is days of data kept.
MAX_INT32 = 2_147_483_647
MAX_RETENTION_DAYS = 36_500


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored as text, or None: NUL characters and lone surrogates."""
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (a lone UTF-16 surrogate is not)"
    return None


def check_json(
    value: Any, *, max_depth: int = MAX_JSON_DEPTH, max_bytes: int = MAX_JSON_BYTES
) -> Any:
    """`value` if it is storable JSON within the bounds; ValueError otherwise.

    Walks the value without recursion, so no nesting depth can exhaust the stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list) and depth > max_depth:
            raise ValueError(f"nesting deeper than {max_depth} levels")
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise ValueError("object keys must be strings")
                if problem := text_problem(key):
                    raise ValueError(f"a key {problem}")
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            if problem := text_problem(item):
                raise ValueError(f"a value {problem}")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError("NaN and Infinity are not JSON")
        elif item is not None and not isinstance(item, bool | int):
            raise ValueError("only JSON values are allowed")
    if len(orjson.dumps(value)) > max_bytes:
        raise ValueError(f"must serialise to at most {max_bytes} bytes of JSON")
    return value


def check_datetime(value: datetime) -> datetime:
    """`value` in UTC if it lies in [MIN_DATETIME, MAX_DATETIME); ValueError otherwise."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not MIN_DATETIME <= utc < MAX_DATETIME:
        raise ValueError(
            f"must lie between {MIN_DATETIME.isoformat()} and {MAX_DATETIME.isoformat()}"
        )
    return utc


def datetime_problem(value: datetime) -> str | None:
    try:
        check_datetime(value)
    except ValueError as exc:
        return f"timestamp {exc}"
    return None


_JSON_OBJECT_SCHEMA = {
    "type": "object",
    "description": f"Free-form JSON object (nesting at most {MAX_JSON_DEPTH} levels, "
    f"at most {MAX_JSON_BYTES} bytes)",
    "additionalProperties": True,
}

JsonObject = Annotated[
    dict[str, Any], AfterValidator(check_json), WithJsonSchema(_JSON_OBJECT_SCHEMA)
]
# Any JSON value (RPC parameters and replies): the same bounds as a free-form object.
JsonValue = Annotated[Any, AfterValidator(check_json), WithJsonSchema({})]
BoundedDatetime = Annotated[AwareDatetime, AfterValidator(check_datetime)]
Int32Limit = Annotated[int, Field(ge=0, le=MAX_INT32, strict=True)]
RetentionDays = Annotated[int, Field(ge=1, le=MAX_RETENTION_DAYS, strict=True)]
