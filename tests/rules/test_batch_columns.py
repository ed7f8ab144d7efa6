"""A queued batch read as columns gives the same readings as the batch read point by point."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from iiot.events import CommittedPoint
from iiot.rules.evaluation import KeyReadings, batch_values, columns_values


def _document(rng: random.Random, *, regular: bool) -> tuple[dict[str, Any], list[int]]:
    """A batch document as the ingest queues it: `regular` when every point carries the same
    series in the same order, else shuffled rows, repeated times and a missing series."""
    series = list(range(1, rng.randint(1, 6) + 1))
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    rows: list[tuple[int, datetime, Any, Any, Any]] = []
    for i in range(rng.randint(1, 30)):
        at = t0 + timedelta(milliseconds=rng.choice([i, i, rng.randint(0, 30)]))
        for sid in series:
            if not regular and rng.random() < 0.2:
                continue
            kind = rng.random()
            if kind < 0.7:
                rows.append((sid, at, rng.choice([1.5, 20.0, -3.25, 7.0]), None, None))
            elif kind < 0.85:
                rows.append((sid, at, None, rng.random() < 0.5, None))
            else:
                rows.append((sid, at, None, None, "text"))
    if not regular:
        rng.shuffle(rows)
    doc = {
        "s": [r[0] for r in rows],
        "t": [r[1] for r in rows],
        "n": [r[2] for r in rows],
        "b": [r[3] for r in rows],
        "x": [r[4] for r in rows],
        "ds": sorted({r[0] for r in rows}),
    }
    # Through JSON, exactly as the engine reads it back.
    return orjson.loads(orjson.dumps(doc)), series


def _plain(readings: dict[uuid.UUID, dict[str, KeyReadings]]) -> dict[Any, Any]:
    return {
        (device, key): (r.numbers, r.newest, r.low, r.high)
        for device, keys in readings.items()
        for key, r in keys.items()
    }


@pytest.mark.parametrize("regular", [True, False])
def test_columns_agree_with_points(regular: bool) -> None:
    rng = random.Random(regular)
    devices = [uuid.uuid4(), uuid.uuid4()]
    for _ in range(300):
        doc, series = _document(rng, regular=regular)
        # Series 1 is a key no rule reads (or of a deleted device): left out by both.
        names = {sid: (devices[sid % 2], f"k{sid}") for sid in series if sid != 1}
        points = [
            CommittedPoint(
                names[sid][0],
                names[sid][1],
                datetime.fromisoformat(ts),
                num if num is not None else (flag if flag is not None else text),
            )
            for sid, ts, num, flag, text in zip(
                doc["s"], doc["t"], doc["n"], doc["b"], doc["x"], strict=True
            )
            if sid in names
        ]
        got = columns_values(doc, names, datetime.fromisoformat)
        assert _plain(got) == _plain(batch_values(points)), doc


def test_readings_are_in_time_order_and_newest_counts_text() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    doc = orjson.loads(
        orjson.dumps(
            {
                "s": [7, 7, 7, 7],
                "t": [t0 + timedelta(seconds=s) for s in (2, 0, 3, 1)],
                "n": [9.0, 1.0, None, 4.0],
                "b": [None, None, None, None],
                "x": [None, None, "off", None],
            }
        )
    )
    device = uuid.uuid4()
    [readings] = columns_values(doc, {7: (device, "k")}, datetime.fromisoformat)[device].values()
    assert readings.numbers == [1.0, 4.0, 9.0]
    assert (readings.low, readings.high) == (1.0, 9.0)
    assert readings.newest == t0 + timedelta(seconds=3)
