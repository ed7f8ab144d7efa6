"""`from_row`: a response schema read from a row's attributes, the given values first."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from pydantic import BaseModel, ValidationError

from iiot.outputs import from_row


@dataclass
class Row:
    id: int
    name: str
    secret: str


class Out(BaseModel):
    id: int
    name: str
    shown: bool


def test_attributes_are_read_and_given_values_take_precedence() -> None:
    row = Row(id=7, name="pump", secret="s3")
    out = from_row(Out, row, shown=True, name="renamed")
    assert out.model_dump() == {"id": 7, "name": "renamed", "shown": True}
    assert row.name == "pump"


def test_a_field_neither_on_the_row_nor_given_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        from_row(Out, Row(id=7, name="pump", secret="s3"))
    assert [e["loc"] for e in info.value.errors()] == [("shown",)]
