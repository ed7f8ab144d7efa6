"""Analytics of one device's telemetry: moving averages, trends, descriptive statistics,
correlation of two metrics and a linear-regression forecast with prediction intervals.

Ranges are resolved and bounded exactly like the telemetry statistics query (default: the last
day; at most 31 days). A device of another tenant is not found. A computation that needs more
readings than the range holds answers 422 `insufficient_data` naming how many it needs.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta

from iiot.analytics.repository import AnalyticsRepository
from iiot.analytics.schemas import (
    CentralTendency,
    Correlation,
    CorrelationOut,
    Dispersion,
    Extremes,
    ForecastOut,
    ForecastParameters,
    ForecastPoint,
    Historical,
    MetricStats,
    Model,
    Percentiles,
    Quality,
    StatisticsBody,
    StatisticsOut,
    TimeRangeOut,
    TimeseriesOut,
    TimeseriesPoint,
    Trend,
    TrendOut,
    TrendStatistics,
)
from iiot.analytics.tdist import t_quantile
from iiot.db.session import TenantSession
from iiot.devices import lookup as devices
from iiot.errors import NotFound, ValidationFailed
from iiot.telemetry.query_schemas import rfc3339_utc
from iiot.telemetry.query_service import MAX_STATISTICS_RANGE, TimeRange, resolve_range
from iiot.tenancy.context import TenantContext

MAX_RANGE = MAX_STATISTICS_RANGE
# Pearson |r| cut-offs: below 0.1 none, then weak, moderate, strong, and very strong from 0.7.
STRENGTHS = ((0.1, "none"), (0.3, "weak"), (0.5, "moderate"), (0.7, "strong"))


class InsufficientData(ValidationFailed):
    code, title = "insufficient_data", "Not enough data"

    def __init__(self, what: str, required: int, available: int) -> None:
        super().__init__(
            f"{what} needs at least {required} numeric readings in the range; {available} found",
            required=required,
            available=available,
        )


async def _prepare(
    session: TenantSession,
    ctx: TenantContext,
    device_id: uuid.UUID,
    start: datetime | None,
    end: datetime | None,
) -> tuple[AnalyticsRepository, TimeRange]:
    window = resolve_range(start, end, MAX_RANGE)
    if not await devices.exists(session, ctx, device_id):
        raise NotFound("device not found")
    return AnalyticsRepository(session, ctx), window


async def timeseries(
    session: TenantSession,
    ctx: TenantContext,
    *,
    device_id: uuid.UUID,
    metric: str,
    start: datetime | None,
    end: datetime | None,
    window: int,
    limit: int,
) -> TimeseriesOut:
    repo, rng = await _prepare(session, ctx, device_id, start, end)
    rows = await repo.timeseries(device_id, metric, rng.start, rng.end, window, limit)
    return TimeseriesOut(
        device_id=device_id,
        metric=metric,
        unit=await repo.unit(device_id, metric, rng.start, rng.end),
        window_size=window,
        data_points=len(rows),
        timeseries=[
            TimeseriesPoint(
                timestamp=r.ts,
                value=r.value,
                moving_avg=r.moving_avg,
                rate_per_minute=r.rate_per_minute,
            )
            for r in rows
        ],
    )


def classify_trend(slope_per_minute: float, threshold: float) -> Trend:
    if abs(slope_per_minute) < threshold:
        return "stable"
    return "increasing" if slope_per_minute > 0 else "decreasing"


async def trends(
    session: TenantSession,
    ctx: TenantContext,
    *,
    device_id: uuid.UUID,
    metric: str,
    start: datetime | None,
    end: datetime | None,
    threshold: float,
) -> TrendOut:
    repo, rng = await _prepare(session, ctx, device_id, start, end)
    fit = await repo.fit(device_id, metric, rng.start, rng.end)
    if fit.n < 2 or fit.slope is None or fit.r2 is None:
        raise InsufficientData("a trend", 2, fit.n)
    assert fit.mean is not None
    assert fit.min is not None
    assert fit.max is not None
    per_minute = fit.slope * 60.0
    return TrendOut(
        device_id=device_id,
        metric=metric,
        trend=classify_trend(per_minute, threshold),
        slope=fit.slope,
        slope_per_minute=per_minute,
        confidence=math.sqrt(max(fit.r2, 0.0)),
        r_squared=fit.r2,
        statistics=TrendStatistics(
            points=fit.n, mean=fit.mean, stddev=fit.stddev, min=fit.min, max=fit.max
        ),
        threshold=threshold,
    )


async def statistics(
    session: TenantSession,
    ctx: TenantContext,
    *,
    device_id: uuid.UUID,
    metric: str,
    start: datetime | None,
    end: datetime | None,
) -> StatisticsOut:
    repo, rng = await _prepare(session, ctx, device_id, start, end)
    s = await repo.summary(device_id, metric, rng.start, rng.end)
    if s.n < 1 or s.percentiles is None:
        raise InsufficientData("statistics", 1, s.n)
    assert s.mean is not None
    assert s.min is not None
    assert s.max is not None
    assert s.first_ts is not None
    assert s.last_ts is not None
    p25, p50, p75, p95 = s.percentiles
    return StatisticsOut(
        device_id=device_id,
        metric=metric,
        unit=await repo.unit(device_id, metric, rng.start, rng.end),
        data_points=s.n,
        time_range=TimeRangeOut(start=s.first_ts, end=s.last_ts),
        statistics=StatisticsBody(
            central_tendency=CentralTendency(mean=s.mean, median=p50),
            dispersion=Dispersion(
                stddev=s.stddev,
                variance=s.variance,
                coefficient_of_variation=(
                    s.stddev / s.mean if s.stddev is not None and s.mean != 0 else None
                ),
                range=s.max - s.min,
                iqr=p75 - p25,
            ),
            extremes=Extremes(min=s.min, max=s.max),
            percentiles=Percentiles(p25=p25, p50_median=p50, p75=p75, p95=p95),
        ),
    )


def strength_of(r: float) -> str:
    size = abs(r)
    for bound, name in STRENGTHS:
        if size < bound:
            return name
    return "very strong"


async def correlation(
    session: TenantSession,
    ctx: TenantContext,
    *,
    device_id: uuid.UUID,
    metric1: str | None,
    metric2: str | None,
    start: datetime | None,
    end: datetime | None,
) -> CorrelationOut:
    repo, rng = await _prepare(session, ctx, device_id, start, end)
    if metric1 is None or metric2 is None:
        missing = [n for n, v in (("metric1", metric1), ("metric2", metric2)) if v is None]
        raise ValidationFailed(
            f"query parameters required: {', '.join(missing)}",
            errors=[{"field": n, "in": "query", "message": "required"} for n in missing],
        )
    if metric1 == metric2:
        raise ValidationFailed("metric1 and metric2 must differ")
    p = await repo.pairs(device_id, metric1, metric2, rng.start, rng.end)
    if p.n < 3:
        raise InsufficientData("a correlation (readings of both metrics at equal times)", 3, p.n)
    assert p.mean1 is not None
    assert p.mean2 is not None
    if p.r is None:
        constant = [m for m, sd in ((metric1, p.stddev1), (metric2, p.stddev2)) if not sd]
        result = Correlation(
            coefficient=None,
            strength="undefined",
            interpretation=f"undefined: {' and '.join(constant) or 'a metric'} is constant",
        )
    else:
        strength = strength_of(p.r)
        if strength == "none":
            interpretation = "no linear correlation"
        else:
            direction = "positive" if p.r > 0 else "negative"
            interpretation = f"{strength} {direction} correlation"
        result = Correlation(
            coefficient=p.r,
            strength=strength,
            interpretation=interpretation,
        )
    return CorrelationOut(
        device_id=device_id,
        metric1=metric1,
        metric2=metric2,
        sample_size=p.n,
        correlation=result,
        metric1_stats=MetricStats(mean=p.mean1, stddev=p.stddev1),
        metric2_stats=MetricStats(mean=p.mean2, stddev=p.stddev2),
    )


def _number(value: float) -> str:
    return f"{value:.6g}"


async def forecast(
    session: TenantSession,
    ctx: TenantContext,
    *,
    device_id: uuid.UUID,
    metric: str,
    start: datetime | None,
    end: datetime | None,
    steps: int,
    confidence: float,
) -> ForecastOut:
    """Least-squares line through (seconds since the first reading, value), extended `steps`
    average reading intervals past the last reading, each with the prediction interval
    ŷ ± t(n-2) · s · √(1 + 1/n + (x - x̄)² / Sxx) of a new reading at that time."""
    repo, rng = await _prepare(session, ctx, device_id, start, end)
    fit = await repo.fit(device_id, metric, rng.start, rng.end)
    if fit.n < 3 or fit.slope is None or fit.intercept is None or fit.sxx is None:
        raise InsufficientData("a forecast", 3, fit.n)
    assert fit.first_ts is not None
    assert fit.last_ts is not None
    assert fit.last_x is not None
    assert fit.xbar is not None
    assert fit.mean is not None
    assert fit.last_value is not None
    n, slope, intercept = fit.n, fit.slope, fit.intercept
    sse = max(fit.sse or 0.0, 0.0)
    r2 = fit.r2 if fit.r2 is not None else 0.0
    s = math.sqrt(sse / (n - 2))
    t = t_quantile((1.0 + confidence) / 2.0, n - 2)
    interval = fit.last_x / (n - 1)
    points = []
    for k in range(1, steps + 1):
        x = fit.last_x + k * interval
        y = intercept + slope * x
        half = t * s * math.sqrt(1.0 + 1.0 / n + (x - fit.xbar) ** 2 / fit.sxx)
        points.append(
            ForecastPoint(
                timestamp=fit.first_ts + timedelta(seconds=x),
                predicted_value=y,
                confidence_lower=y - half,
                confidence_upper=y + half,
            )
        )
    origin = rfc3339_utc(fit.first_ts)
    return ForecastOut(
        device_id=device_id,
        metric=metric,
        historical=Historical(
            data_points=n,
            start=fit.first_ts,
            end=fit.last_ts,
            mean=fit.mean,
            last_value=fit.last_value,
        ),
        model=Model(
            type="linear_regression",
            slope=slope,
            intercept=intercept,
            equation=f"y = {_number(slope)} * t + {_number(intercept)} (t: seconds since {origin})",
            r_squared=r2,
        ),
        forecast=points,
        quality=Quality(
            rmse=math.sqrt(sse / n), r_squared=r2, confidence_level=confidence, sample_size=n
        ),
        parameters=ForecastParameters(
            steps=steps, avg_interval_seconds=interval, forecast_horizon=interval * steps
        ),
    )
