"""Telemetry aggregates (UTC-aligned buckets, edges) and statistics against Python's figures."""

from __future__ import annotations

import math
import random
import statistics as pystats
from datetime import UTC, datetime, timedelta

import pytest

from iiot.runtime import Runtime
from tests.fixtures.factories import World
from tests.telemetry.test_query import params, seed_device, seed_points

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def percentile_cont(sorted_values: list[float], fraction: float) -> float:
    """PostgreSQL's percentile_cont: linear interpolation between the closest ranks."""
    pos = fraction * (len(sorted_values) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


async def test_points_exactly_on_a_boundary_open_the_next_bucket(
    runtime: Runtime, world: World
) -> None:
    dev = await seed_device(runtime, world.tenant_a.id)
    points = [
        ("temp", T0, 1),  # exactly 12:00:00 -> bucket 12:00
        ("temp", T0 + timedelta(seconds=59, microseconds=999_999), 3),  # still 12:00
        ("temp", T0 + timedelta(minutes=1), 10),  # exactly 12:01 -> bucket 12:01
        ("temp", T0 + timedelta(minutes=3, seconds=30), 7),  # 12:03 (12:02 is empty)
        ("state", T0 + timedelta(seconds=10), "RUNNING"),  # not numeric: ignored
        ("temp", T0 + timedelta(minutes=4), 100),  # at `end`: excluded
    ]
    await seed_points(runtime, world.tenant_a.id, dev, points)
    client = world.a["viewer"].client
    base = params(device_id=dev, key="temp", start=T0, end=T0 + timedelta(minutes=4), interval="1m")
    expected = {
        "avg": [2.0, 10.0, 7.0],
        "min": [1.0, 10.0, 7.0],
        "max": [3.0, 10.0, 7.0],
        "sum": [4.0, 10.0, 7.0],
        "count": [2.0, 1.0, 1.0],
    }
    for fn, values in expected.items():
        r = await client.get("/api/v1/telemetry/aggregate", params=base | {"fn": fn})
        assert r.status_code == 200, r.text
        body = r.json()
        assert [b["ts"] for b in body["buckets"]] == [
            "2026-11-20T12:00:00Z",
            "2026-11-20T12:01:00Z",
            "2026-11-20T12:03:00Z",
        ]
        assert [b["value"] for b in body["buckets"]] == values, fn
        assert [b["count"] for b in body["buckets"]] == [2, 1, 1]
        assert (body["fn"], body["interval"]) == (fn, "1m")


async def test_buckets_align_to_utc_not_to_the_range_start(runtime: Runtime, world: World) -> None:
    dev = await seed_device(runtime, world.tenant_a.id)
    day1 = datetime(2026, 11, 20, 23, 59, 59, tzinfo=UTC)
    day2 = datetime(2026, 11, 21, 0, 0, 0, tzinfo=UTC)
    await seed_points(
        runtime,
        world.tenant_a.id,
        dev,
        [("kw", day1, 1), ("kw", day2, 2), ("kw", day2 + timedelta(hours=5), 4)],
    )
    # A range starting mid-day (in a +05:30 offset) still yields buckets at 00:00 UTC.
    r = await world.a["viewer"].client.get(
        "/api/v1/telemetry/aggregate",
        params={
            "device_id": str(dev),
            "key": "kw",
            "interval": "1d",
            "fn": "sum",
            "start": "2026-11-20T17:30:00+05:30",
            "end": "2026-11-22T00:00:00Z",
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["start"] == "2026-11-20T12:00:00Z"
    assert [(b["ts"], b["value"]) for b in body["buckets"]] == [
        ("2026-11-20T00:00:00Z", 1.0),
        ("2026-11-21T00:00:00Z", 6.0),
    ]
    r = await world.a["viewer"].client.get(
        "/api/v1/telemetry/aggregate",
        params=params(
            device_id=dev,
            key="kw",
            interval="5m",
            fn="max",
            start=day1 - timedelta(minutes=7),
            end=day2 + timedelta(minutes=1),
        ),
    )
    assert [(b["ts"], b["value"]) for b in r.json()["buckets"]] == [
        ("2026-11-20T23:55:00Z", 1.0),
        ("2026-11-21T00:00:00Z", 2.0),
    ]


@pytest.mark.parametrize(
    ("interval", "status"),
    [
        ("1x", 422),
        ("0m", 422),
        ("m", 422),
        ("1.5m", 422),
        ("-1m", 422),
        ("1M", 422),
        ("400d", 422),
        ("1m", 200),
    ],
)
async def test_interval_syntax(runtime: Runtime, world: World, interval: str, status: int) -> None:
    dev = await seed_device(runtime, world.tenant_a.id)
    r = await world.a["viewer"].client.get(
        "/api/v1/telemetry/aggregate",
        params=params(
            device_id=dev, key="k", interval=interval, start=T0, end=T0 + timedelta(hours=1)
        ),
    )
    assert r.status_code == status, r.text


async def test_bucket_count_and_fn_are_bounded(runtime: Runtime, world: World) -> None:
    dev = await seed_device(runtime, world.tenant_a.id)
    client = world.a["viewer"].client
    too_many = params(device_id=dev, key="k", interval="1s", start=T0, end=T0 + timedelta(days=1))
    r = await client.get("/api/v1/telemetry/aggregate", params=too_many)
    assert r.status_code == 422
    assert "buckets" in r.json()["detail"]
    r = await client.get(
        "/api/v1/telemetry/aggregate",
        params=params(
            device_id=dev, key="k", interval="1h", fn="median", start=T0, end=T0 + timedelta(days=1)
        ),
    )
    assert r.status_code == 422


async def test_statistics_match_python(runtime: Runtime, world: World) -> None:
    dev = await seed_device(runtime, world.tenant_a.id)
    rng = random.Random(42)
    values = [round(rng.gauss(50, 12), 3) for _ in range(997)]
    points = [("temp", T0 + timedelta(seconds=i), v) for i, v in enumerate(values)]
    rng.shuffle(points)  # arrival order must not matter
    points += [("temp", T0 + timedelta(seconds=2000), 1e6)]  # outside the range
    points += [("flag", T0 + timedelta(seconds=i), i % 2 == 0) for i in range(10)]
    await seed_points(runtime, world.tenant_a.id, dev, points)

    r = await world.a["viewer"].client.get(
        "/api/v1/telemetry/statistics",
        params=params(device_id=dev, key="temp", start=T0, end=T0 + timedelta(seconds=1000)),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    ordered = sorted(values)
    assert body["count"] == len(values)
    assert body["mean"] == pytest.approx(pystats.fmean(values), rel=1e-12)
    assert body["min"] == min(values)
    assert body["max"] == max(values)
    assert body["stddev"] == pytest.approx(pystats.stdev(values), rel=1e-9)
    for name, fraction in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)):
        assert body[name] == pytest.approx(percentile_cont(ordered, fraction), rel=1e-12), name


async def test_statistics_of_an_empty_or_non_numeric_series(runtime: Runtime, world: World) -> None:
    dev = await seed_device(runtime, world.tenant_a.id)
    await seed_points(runtime, world.tenant_a.id, dev, [("state", T0, "RUNNING"), ("one", T0, 5)])
    client = world.a["viewer"].client
    window = {"start": T0 - timedelta(minutes=1), "end": T0 + timedelta(minutes=1)}
    r = await client.get(
        "/api/v1/telemetry/statistics", params=params(device_id=dev, key="state", **window)
    )
    assert r.status_code == 200, r.text
    assert r.json()["count"] == 0
    assert (r.json()["mean"], r.json()["p50"]) == (None, None)
    r = await client.get(
        "/api/v1/telemetry/statistics", params=params(device_id=dev, key="one", **window)
    )
    body = r.json()
    assert (body["count"], body["mean"], body["p99"], body["stddev"]) == (1, 5.0, 5.0, None)
    r = await client.get(
        "/api/v1/telemetry/statistics",
        params=params(device_id=dev, key="one", start=T0 - timedelta(days=32), end=T0),
    )
    assert r.status_code == 422
