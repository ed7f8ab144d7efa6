"""Pure pieces of rule evaluation: comparing values, reading numbers, rendering messages."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


def compare(left: float, op: str, right: float) -> bool:
    return _OPERATORS[op](left, right)


def comparator(op: str) -> Callable[[float, float], bool]:
    return _OPERATORS[op]


def numeric(value: float | bool | str | None) -> float | None:
    """The number a rule compares: numbers as they are, booleans as 1/0, text not at all."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    return None


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def render_message(template: str, values: Mapping[str, object]) -> str:
    """Fill the validated placeholders; a value that is absent renders empty."""
    shown = _Blank({k: _show(v) for k, v in values.items()})
    return template.format_map(shown)[:2000]


def _show(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
