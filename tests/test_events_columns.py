"""A committed batch's points as columns (`CommittedColumns`): the same points as a list of
`CommittedPoint`s, and the same newest point per series as the general rule."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from iiot.events import CommittedColumns, CommittedPoint, newest_points


def _newest_of_list(points: list[CommittedPoint]) -> list[CommittedPoint]:
    return newest_points(list(points))


@pytest.mark.parametrize("seed", range(20))
def test_columns_are_the_points_and_agree_on_the_newest(seed: int) -> None:
    rng = random.Random(seed)
    devices = [uuid.uuid4() for _ in range(rng.randint(1, 3))]
    base = datetime(2026, 1, 1, tzinfo=UTC)
    n = rng.randint(0, 60)
    times = [base + timedelta(seconds=rng.randint(0, 5)) for _ in range(n)]
    if seed % 2:
        times.sort()  # the usual batch: in time order, with equal times
    ids = [rng.choice(devices) for _ in range(n)]
    keys = [rng.choice("abc") for _ in range(n)]
    values: list[float | bool | str | None] = [float(i) for i in range(n)]  # tells points apart
    columns = CommittedColumns(ids, keys, times, values)
    points = list(map(CommittedPoint, ids, keys, times, values))
    assert list(columns) == points
    assert len(columns) == n
    assert [columns[i] for i in range(n)] == points
    assert columns[1:3] == points[1:3]
    assert columns.newest() == _newest_of_list(points)
    assert newest_points(columns) == newest_points(points)
    # Of equal times the last point wins, whichever path finds it.
    if n:
        same = CommittedColumns([ids[0]] * 3, ["k"] * 3, [base] * 3, [1.0, 2.0, 3.0])
        assert [p.value for p in same.newest()] == [3.0]
