"""Response schemas read from ORM rows.

A response schema that shows a row's attributes declares `from_attributes=True` and is built
with `Schema.model_validate(row)`, with no copier listing the fields again. `from_row` also
takes the values a row does not hold (presence, SLA figures, a secret shown once), by name.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


class _RowWith:
    """The attributes of `row`, except those given in `values`."""

    __slots__ = ("_row", "_values")

    def __init__(self, row: object, values: dict[str, Any]) -> None:
        self._row = row
        self._values = values

    def __getattr__(self, name: str) -> Any:
        if name in self._values:
            return self._values[name]
        return getattr(self._row, name)


def from_row(model: type[M], row: object, **values: Any) -> M:
    """`model` validated from the attributes of `row`, `values` taking precedence."""
    return model.model_validate(_RowWith(row, values) if values else row, from_attributes=True)
