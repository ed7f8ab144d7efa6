"""The five analytics routes against figures computed here, independently, with numpy."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from iiot.analytics.tdist import t_quantile
from iiot.runtime import Runtime
from tests.fixtures.factories import World
from tests.telemetry.test_query import iso, seed_device, seed_points

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
RANGE = {"from": iso(T0 - timedelta(hours=1)), "to": iso(T0 + timedelta(hours=5))}
# Irregular spacing, with a long gap in the middle.
OFFSETS = [0, 10, 25, 30, 60, 600, 610, 640, 700, 720]
VALUES = [20.0, 21.5, 21.0, 23.0, 22.5, 30.0, 29.0, 31.5, 33.0, 32.0]


async def _series(
    rt: Runtime,
    world: World,
    key: str = "temp",
    offsets: list[int] = OFFSETS,
    values: list[float] = VALUES,
    unit: str | None = "C",
) -> uuid.UUID:
    dev = await seed_device(rt, world.tenant_a.id)
    points = [(key, T0 + timedelta(seconds=s), v) for s, v in zip(offsets, values, strict=True)]
    await seed_points(rt, world.tenant_a.id, dev, points, unit=unit)
    return dev


async def _get(world: World, path: str, **query: Any) -> Any:
    r = await world.a["viewer"].client.get(f"/api/v1/analytics/{path}", params={**RANGE, **query})
    return r


def _close(a: float | None, b: float, rel: float = 1e-9) -> bool:
    return a is not None and a == pytest.approx(b, rel=rel, abs=1e-9)


# --- timeseries -------------------------------------------------------------------------------


async def test_timeseries_moving_average_and_rate_across_gaps(
    runtime: Runtime, world: World
) -> None:
    dev = await _series(runtime, world)
    r = await _get(world, f"timeseries/{dev}/temp", window=3)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["unit"] == "C"
    assert body["window_size"] == 3
    assert body["data_points"] == 10
    y, t = np.array(VALUES), np.array(OFFSETS, dtype=float)
    expected_avg = [y[max(0, i - 2) : i + 1].mean() for i in range(len(y))]
    expected_rate = np.diff(y) / np.diff(t) * 60.0
    got = body["timeseries"]
    assert [p["timestamp"] for p in got] == [iso(T0 + timedelta(seconds=s)) for s in OFFSETS]
    assert all(_close(p["moving_avg"], e) for p, e in zip(got, expected_avg, strict=True))
    assert got[0]["rate_per_minute"] is None
    assert all(_close(p["rate_per_minute"], e) for p, e in zip(got[1:], expected_rate, strict=True))


async def test_timeseries_limit_keeps_the_newest_with_complete_averages(
    runtime: Runtime, world: World
) -> None:
    dev = await _series(runtime, world)
    r = await _get(world, f"timeseries/{dev}/temp", window=4, limit=3)
    assert r.status_code == 200, r.text
    got = r.json()["timeseries"]
    y = np.array(VALUES)
    assert [p["value"] for p in got] == VALUES[-3:]
    for p, i in zip(got, range(7, 10), strict=True):
        assert _close(p["moving_avg"], y[i - 3 : i + 1].mean())
    assert _close(got[0]["rate_per_minute"], (VALUES[7] - VALUES[6]) / 30 * 60)


async def test_timeseries_of_an_empty_range_is_empty(runtime: Runtime, world: World) -> None:
    dev = await _series(runtime, world)
    r = await _get(world, f"timeseries/{dev}/no_such_metric")
    assert r.status_code == 200, r.text
    assert r.json()["data_points"] == 0
    assert r.json()["timeseries"] == []


# --- trends -----------------------------------------------------------------------------------


async def test_trend_matches_least_squares(runtime: Runtime, world: World) -> None:
    dev = await _series(runtime, world)
    r = await _get(world, f"trends/{dev}/temp")
    assert r.status_code == 200, r.text
    body = r.json()
    t, y = np.array(OFFSETS, dtype=float), np.array(VALUES)
    slope, _ = np.polyfit(t, y, 1)
    corr = np.corrcoef(t, y)[0, 1]
    assert _close(body["slope"], slope, 1e-7)
    assert _close(body["slope_per_minute"], slope * 60, 1e-7)
    assert _close(body["r_squared"], corr**2, 1e-7)
    assert _close(body["confidence"], abs(corr), 1e-7)
    assert body["trend"] == "increasing"  # 1.2 per minute ≥ 0.01
    stats = body["statistics"]
    assert stats["points"] == 10
    assert stats["min"] == 20.0
    assert stats["max"] == 33.0
    assert _close(stats["mean"], y.mean())
    assert _close(stats["stddev"], y.std(ddof=1))
    assert body["threshold"] == 0.01


async def test_trend_direction_and_threshold(runtime: Runtime, world: World) -> None:
    dev = await _series(runtime, world, values=[-v for v in VALUES])
    r = await _get(world, f"trends/{dev}/temp")
    assert r.json()["trend"] == "decreasing"
    # |slope per minute| ≈ 1.2: a threshold above it calls the same series stable.
    r = await _get(world, f"trends/{dev}/temp", threshold=5)
    assert r.json()["trend"] == "stable"
    assert r.json()["threshold"] == 5


async def test_trend_of_a_constant_series_is_stable(runtime: Runtime, world: World) -> None:
    dev = await _series(runtime, world, values=[7.0] * len(OFFSETS))
    r = await _get(world, f"trends/{dev}/temp")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["trend"] == "stable"
    assert body["slope"] == 0
    assert body["statistics"]["stddev"] == 0


async def test_trend_of_two_points_is_their_line_and_one_point_is_refused(
    runtime: Runtime, world: World
) -> None:
    dev = await _series(runtime, world, offsets=[0, 120], values=[10.0, 16.0])
    body = (await _get(world, f"trends/{dev}/temp")).json()
    assert _close(body["slope_per_minute"], 3.0)
    assert _close(body["r_squared"], 1.0)
    one = await _series(runtime, world, key="p", offsets=[0], values=[1.0])
    r = await _get(world, f"trends/{one}/p")
    assert r.status_code == 422
    assert r.json()["code"] == "insufficient_data"
    assert r.json()["required"] == 2
    assert r.json()["available"] == 1


# --- statistics -------------------------------------------------------------------------------


async def test_statistics_match_numpy(runtime: Runtime, world: World) -> None:
    dev = await _series(runtime, world)
    r = await _get(world, f"statistics/{dev}/temp")
    assert r.status_code == 200, r.text
    body = r.json()
    y = np.array(VALUES)
    p25, p50, p75, p95 = np.percentile(y, [25, 50, 75, 95])  # linear, like percentile_cont
    s = body["statistics"]
    assert body["data_points"] == 10
    assert body["unit"] == "C"
    assert body["time_range"] == {"start": iso(T0), "end": iso(T0 + timedelta(seconds=720))}
    assert _close(s["central_tendency"]["mean"], y.mean())
    assert _close(s["central_tendency"]["median"], np.median(y))
    d = s["dispersion"]
    assert _close(d["stddev"], y.std(ddof=1))
    assert _close(d["variance"], y.var(ddof=1))
    assert _close(d["coefficient_of_variation"], y.std(ddof=1) / y.mean())
    assert _close(d["range"], 13.0)
    assert _close(d["iqr"], p75 - p25)
    assert s["extremes"] == {"min": 20.0, "max": 33.0}
    pct = s["percentiles"]
    for name, expected in (("p25", p25), ("p50_median", p50), ("p75", p75), ("p95", p95)):
        assert _close(pct[name], expected), name


async def test_statistics_edge_cases(runtime: Runtime, world: World) -> None:
    dev = await _series(runtime, world, values=[0.0] * len(OFFSETS))
    d = (await _get(world, f"statistics/{dev}/temp")).json()["statistics"]["dispersion"]
    # Mean zero: the coefficient of variation is undefined, not a division error.
    assert d["stddev"] == 0
    assert d["coefficient_of_variation"] is None
    assert d["iqr"] == 0
    one = await _series(runtime, world, key="p", offsets=[5], values=[4.0])
    body = (await _get(world, f"statistics/{one}/p")).json()
    assert body["data_points"] == 1
    assert body["statistics"]["dispersion"]["stddev"] is None
    r = await _get(world, f"statistics/{one}/absent")
    assert r.status_code == 422
    assert r.json()["code"] == "insufficient_data"


# --- correlation ------------------------------------------------------------------------------


async def test_correlation_pairs_equal_timestamps_only(runtime: Runtime, world: World) -> None:
    dev = await _series(runtime, world)
    other = [2 * v + (1 if i % 2 else -1) for i, v in enumerate(VALUES)]
    points = [("hum", T0 + timedelta(seconds=s), v) for s, v in zip(OFFSETS, other, strict=True)]
    # Readings of one metric only never pair.
    points += [("hum", T0 + timedelta(seconds=s + 1), 1000.0) for s in OFFSETS]
    await seed_points(runtime, world.tenant_a.id, dev, points)
    r = await _get(world, f"correlation/{dev}", metric1="temp", metric2="hum")
    assert r.status_code == 200, r.text
    body = r.json()
    coefficient = np.corrcoef(VALUES, other)[0, 1]
    assert body["sample_size"] == 10
    assert _close(body["correlation"]["coefficient"], coefficient)
    assert body["correlation"]["strength"] == "very strong"
    assert body["correlation"]["interpretation"] == "very strong positive correlation"
    assert _close(body["metric1_stats"]["mean"], np.mean(VALUES))
    assert _close(body["metric2_stats"]["stddev"], np.std(other, ddof=1))


async def test_correlation_strength_bands_and_constant_series(
    runtime: Runtime, world: World
) -> None:
    dev = await seed_device(runtime, world.tenant_a.id)
    xs = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    # r = -0.4 exactly for this pair of series: moderate (0.3 ≤ |r| < 0.5), negative.
    ys = [4.0, 1.0, 6.0, 2.0, 3.0, 1.0]
    expected = np.corrcoef(xs, ys)[0, 1]
    points = [("x", T0 + timedelta(seconds=i), v) for i, v in enumerate(xs)]
    points += [("y", T0 + timedelta(seconds=i), v) for i, v in enumerate(ys)]
    points += [("flat", T0 + timedelta(seconds=i), 3.0) for i in range(6)]
    await seed_points(runtime, world.tenant_a.id, dev, points)
    body = (await _get(world, f"correlation/{dev}", metric1="x", metric2="y")).json()
    assert _close(body["correlation"]["coefficient"], expected)
    labels = {0.05: "none", 0.2: "weak", 0.4: "moderate", 0.6: "strong", 0.9: "very strong"}
    assert (
        body["correlation"]["strength"] == labels[min(labels, key=lambda b: abs(b - abs(expected)))]
    )
    assert body["correlation"]["interpretation"].endswith("negative correlation")
    body = (await _get(world, f"correlation/{dev}", metric1="x", metric2="flat")).json()
    assert body["correlation"]["coefficient"] is None
    assert body["correlation"]["strength"] == "undefined"
    assert "flat is constant" in body["correlation"]["interpretation"]


async def test_correlation_needs_three_pairs_and_both_metrics(
    runtime: Runtime, world: World
) -> None:
    dev = await _series(runtime, world, offsets=[0, 1], values=[1.0, 2.0])
    await seed_points(
        runtime, world.tenant_a.id, dev, [("b", T0, 1.0), ("b", T0 + timedelta(seconds=1), 3.0)]
    )
    r = await _get(world, f"correlation/{dev}", metric1="temp", metric2="b")
    assert r.status_code == 422
    assert r.json()["available"] == 2
    r = await _get(world, f"correlation/{dev}", metric1="temp")
    assert r.status_code == 422
    assert "metric2" in r.json()["detail"]


# --- forecast ---------------------------------------------------------------------------------


async def test_forecast_prediction_intervals(runtime: Runtime, world: World) -> None:
    dev = await _series(runtime, world)
    r = await _get(world, f"forecast/{dev}/temp", steps=4, confidence=0.95)
    assert r.status_code == 200, r.text
    body = r.json()
    t, y = np.array(OFFSETS, dtype=float), np.array(VALUES)
    n = len(t)
    slope, intercept = np.polyfit(t, y, 1)
    residuals = y - (intercept + slope * t)
    sse = float(residuals @ residuals)
    s = np.sqrt(sse / (n - 2))
    t_crit = 2.306004135  # Student's t, 0.975 quantile, 8 degrees of freedom (printed tables)
    sxx = float(((t - t.mean()) ** 2).sum())
    step = (t[-1] - t[0]) / (n - 1)
    assert _close(body["model"]["slope"], slope, 1e-7)
    assert _close(body["model"]["intercept"], intercept, 1e-7)
    assert body["model"]["type"] == "linear_regression"
    assert _close(body["quality"]["rmse"], np.sqrt(sse / n), 1e-7)
    assert body["quality"]["sample_size"] == n
    assert body["quality"]["confidence_level"] == 0.95
    assert _close(body["parameters"]["avg_interval_seconds"], step)
    assert _close(body["parameters"]["forecast_horizon"], 4 * step)
    assert body["historical"]["data_points"] == n
    assert body["historical"]["last_value"] == 32.0
    assert len(body["forecast"]) == 4
    for k, point in enumerate(body["forecast"], start=1):
        x = t[-1] + k * step
        predicted = intercept + slope * x
        half = t_crit * s * np.sqrt(1 + 1 / n + (x - t.mean()) ** 2 / sxx)
        assert point["timestamp"] == iso(T0 + timedelta(seconds=float(x)))
        assert _close(point["predicted_value"], predicted, 1e-7)
        assert _close(point["confidence_lower"], predicted - half, 1e-6)
        assert _close(point["confidence_upper"], predicted + half, 1e-6)
    wider = (await _get(world, f"forecast/{dev}/temp", steps=1, confidence=0.99)).json()
    assert wider["forecast"][0]["confidence_upper"] > body["forecast"][0]["confidence_upper"]


async def test_forecast_edge_cases(runtime: Runtime, world: World) -> None:
    flat = await _series(runtime, world, values=[5.0] * len(OFFSETS))
    body = (await _get(world, f"forecast/{flat}/temp", steps=2)).json()
    assert [p["predicted_value"] for p in body["forecast"]] == [5.0, 5.0]
    assert body["forecast"][0]["confidence_lower"] == body["forecast"][0]["confidence_upper"] == 5.0
    two = await _series(runtime, world, key="p", offsets=[0, 60], values=[1.0, 2.0])
    r = await _get(world, f"forecast/{two}/p")
    assert r.status_code == 422
    assert r.json()["code"] == "insufficient_data"
    assert r.json()["required"] == 3
    r = await _get(world, f"forecast/{two}/p", confidence=1.0)
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error"


def test_t_quantiles_match_printed_tables() -> None:
    table = {
        (0.975, 1): 12.706204736,
        (0.975, 2): 4.302652730,
        (0.975, 10): 2.228138852,
        (0.995, 3): 5.840909310,
        (0.95, 30): 1.697260887,
    }
    for (p, df), expected in table.items():
        assert t_quantile(p, df) == pytest.approx(expected, abs=1e-8)
    # And the defining property, by integrating the density numerically (Simpson's rule).
    for p, df in ((0.9, 120), (0.99, 7)):
        q = t_quantile(p, df)
        density = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(
            df * math.pi
        )
        xs = np.linspace(0.0, q, 20_001)
        fx = density * (1 + xs**2 / df) ** (-(df + 1) / 2)
        h = q / 20_000
        area = h / 3 * (fx[0] + fx[-1] + 4 * fx[1:-1:2].sum() + 2 * fx[2:-1:2].sum())
        assert 0.5 + area == pytest.approx(p, abs=1e-10)
    assert t_quantile(0.025, 10) == pytest.approx(-2.228138852, abs=1e-8)


# --- access and bounds ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "timeseries/{d}/temp",
        "trends/{d}/temp",
        "statistics/{d}/temp",
        "correlation/{d}?metric1=temp&metric2=hum",
        "forecast/{d}/temp",
    ],
)
async def test_another_tenants_device_is_not_found(
    runtime: Runtime, world: World, path: str
) -> None:
    theirs = await seed_device(runtime, world.tenant_b.id, "beta-analytics")
    await seed_points(runtime, world.tenant_b.id, theirs, [("temp", T0, 1.0)])
    url = "/api/v1/analytics/" + path.format(d=theirs)
    r = await world.a["admin"].client.get(url, params=RANGE)
    assert r.status_code == 404
    assert r.json()["code"] == "not_found"


async def test_ranges_are_bounded_and_api_keys_with_read_scope_may_read(
    runtime: Runtime, world: World, factory: Any
) -> None:
    dev = await _series(runtime, world)
    r = await world.a["viewer"].client.get(
        f"/api/v1/analytics/statistics/{dev}/temp",
        params={"from": iso(T0 - timedelta(days=40)), "to": iso(T0)},
    )
    assert r.status_code == 422
    assert "31 days" in r.json()["detail"]
    r = await world.a["viewer"].client.get(
        f"/api/v1/analytics/statistics/{dev}/temp", params={"from": "2026-11-20T12:00:00"}
    )
    assert r.status_code == 422  # no time zone
    made = await world.a["admin"].client.post(
        "/api/v1/api-keys", json={"name": "dashboards", "scopes": ["read"]}
    )
    assert made.status_code == 201, made.text
    reader = factory.client({"X-API-Key": made.json()["key"]})
    r = await reader.get(f"/api/v1/analytics/statistics/{dev}/temp", params=RANGE)
    assert r.status_code == 200
    assert r.json()["data_points"] == 10
