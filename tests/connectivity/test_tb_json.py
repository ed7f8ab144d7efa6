"""The ThingsBoard JSON forms and value rules, parsed without a database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from iiot.connectivity import tb_json
from iiot.errors import ValidationFailed

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def _flat(points: list[tb_json.PointIn]) -> list[tuple[datetime, dict[str, object]]]:
    return [(p.ts, p.values) for p in points]


def test_plain_object_takes_the_receive_time() -> None:
    assert _flat(tb_json.parse_telemetry(b'{"t": 21.5, "on": true, "s": "x"}', NOW)) == [
        (NOW, {"t": 21.5, "on": True, "s": "x"})
    ]


def test_ts_values_and_arrays_of_both_forms() -> None:
    payload = (
        b'[{"ts": 1700000000000, "values": {"a": 1}}, {"b": 2},'
        b' {"ts": "1700000000001", "values": {"c": 3}}]'
    )
    got = _flat(tb_json.parse_telemetry(payload, NOW))
    assert got == [
        (datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC), {"a": 1.0}),
        (NOW, {"b": 2.0}),
        (datetime(2023, 11, 14, 22, 13, 20, 1000, tzinfo=UTC), {"c": 3.0}),
    ]


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("42", 42.0),
        ("-7", -7.0),
        ("21.50", 21.5),
        (".5", 0.5),
        ("-.5", -0.5),
        ("1.", "1."),  # a trailing dot is not a number for ThingsBoard
        ("+3", "+3"),
        ("1e3", "1e3"),  # no exponent form in strings
        (" 4", " 4"),
        ("0x10", "0x10"),
        ("99999999999999999999", "99999999999999999999"),  # beyond a long: stays text
        ("1.2.3", "1.2.3"),
        ("", ""),
        ("abc", "abc"),
    ],
)
def test_numeric_strings_are_cast_as_thingsboard_does(raw: str, stored: object) -> None:
    [point] = tb_json.parse_telemetry(f'{{"k": "{raw}"}}'.encode(), NOW)
    assert point.values == {"k": stored}
    assert type(point.values["k"]) is type(stored)


def test_json_values_are_kept_as_json_text_and_nulls_skipped() -> None:
    [point] = tb_json.parse_telemetry(b'{"cfg": {"a": [1, 2]}, "gone": null, "n": 1}', NOW)
    assert point.values == {"cfg": '{"a":[1,2]}', "n": 1.0}


def test_an_object_with_only_nulls_yields_no_point() -> None:
    assert tb_json.parse_telemetry(b'{"gone": null}', NOW) == []


@pytest.mark.parametrize(
    "payload",
    [
        b"{not json",
        b"42",
        b'"text"',
        b"[1, 2]",
        b'{"ts": "soon", "values": {"a": 1}}',
        b'{"ts": 1700000000000, "values": [1]}',
        b'{"ts": -5, "values": {"a": 1}}',
    ],
)
def test_malformed_payloads_are_refused(payload: bytes) -> None:
    with pytest.raises(ValidationFailed):
        tb_json.parse_telemetry(payload, NOW)


def test_gateway_telemetry_per_device() -> None:
    got = tb_json.parse_gateway_telemetry(
        b'{"Pump 1": [{"ts": 1700000000000, "values": {"rpm": "1200"}}],'
        b' "Valve": [{"open": true}]}',
        NOW,
    )
    assert {name: _flat(points) for name, points in got.items()} == {
        "Pump 1": [(datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC), {"rpm": 1200.0})],
        "Valve": [(NOW, {"open": True})],
    }


def test_attributes_keep_json_and_cast_numeric_strings() -> None:
    assert tb_json.parse_attributes(b'{"fw": "1.2", "cfg": {"x": 1}, "n": null, "id": "12"}') == {
        "fw": 1.2,
        "cfg": {"x": 1},
        "id": 12,
    }
    assert tb_json.parse_gateway_attributes(b'{"Pump 1": {"model": "P-100"}}') == {
        "Pump 1": {"model": "P-100"}
    }
    with pytest.raises(ValidationFailed):
        tb_json.parse_attributes(b"[1]")
    with pytest.raises(ValidationFailed):
        tb_json.parse_gateway_attributes(b'{"": {"a": 1}}')


@pytest.mark.parametrize(
    ("client", "shared", "expected"),
    [
        (None, None, (None, None)),
        ("", "", (None, None)),
        ("a,b", None, (["a", "b"], [])),
        (None, "c", ([], ["c"])),
        (" a , ,b", "c", (["a", "b"], ["c"])),
    ],
)
def test_attribute_request_keys_follow_thingsboard(
    client: str | None, shared: str | None, expected: tuple[object, object]
) -> None:
    assert tb_json.attribute_request_keys(client, shared) == expected
