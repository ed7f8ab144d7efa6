"""Pure parts of evaluation: the batch shortcut agrees with judging every reading; templates."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from iiot.rules.conditions import compare, render_message
from iiot.rules.evaluation import Series, _plain_threshold
from iiot.rules.schemas import ThresholdCondition, check_template


def _edges(values: list[float], op: str, threshold: float) -> list[tuple[bool, float]]:
    out: list[tuple[bool, float]] = []
    for v in values:
        matched = compare(v, op, threshold)
        if not out or out[-1][0] != matched:
            out.append((matched, v))
    return out


@pytest.mark.parametrize("op", [">", ">=", "<", "<=", "==", "!="])
def test_batch_shortcut_matches_reading_by_reading(op: str) -> None:
    rng = random.Random(op)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for _ in range(300):
        values = [float(rng.randint(0, 10)) for _ in range(rng.randint(1, 12))]
        threshold = float(rng.randint(-1, 11))
        series = Series((t0 + timedelta(seconds=i), v) for i, v in enumerate(values))
        series.seal()
        c = ThresholdCondition(key="k", operator=op, value=threshold)  # type: ignore[arg-type]
        got = [(v.matched, v.value) for v in _plain_threshold(c, series)]
        assert got == _edges(values, op, threshold), (values, op, threshold)


def test_readings_arriving_out_of_order_are_judged_in_time_order() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    series = Series([(t0 + timedelta(seconds=2), 9.0), (t0, 1.0), (t0 + timedelta(seconds=1), 1.0)])
    series.seal()
    c = ThresholdCondition(key="k", operator=">", value=5)
    assert [v.matched for v in _plain_threshold(c, series)] == [False, True]


def test_templates() -> None:
    assert check_template("{rule_name} on {device_name}: {key}={value} > {threshold}")
    for bad in ("{secret}", "{value!r}", "{value:>{threshold}}", "{0}", "{value.real}", "{"):
        with pytest.raises(ValueError):  # noqa: PT011 - the message varies by case
            check_template(bad)
    shown = render_message("{key}={value} ({threshold})", {"key": "t", "value": 1.5})
    assert shown == "t=1.5 ()"
