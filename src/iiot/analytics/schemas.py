"""Wire format of the analytics routes: the original platform's paths and field names."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel

from iiot.telemetry.query_schemas import UtcTimestamp

Trend = Literal["increasing", "decreasing", "stable"]


class TimeseriesPoint(BaseModel):
    timestamp: UtcTimestamp
    value: float
    # Mean of this point and the `window - 1` points before it (fewer at the range's start).
    moving_avg: float
    # Change per minute since the previous point; null for the first point of the range.
    rate_per_minute: float | None


class TimeseriesOut(BaseModel):
    device_id: uuid.UUID
    metric: str
    unit: str | None
    window_size: int
    data_points: int
    timeseries: list[TimeseriesPoint]


class TrendStatistics(BaseModel):
    points: int
    mean: float
    stddev: float | None
    min: float
    max: float


class TrendOut(BaseModel):
    device_id: uuid.UUID
    metric: str
    trend: Trend
    # Least-squares slope of value over time, per second and per minute.
    slope: float
    slope_per_minute: float
    # |Pearson r| of value and time (1 for a perfectly straight series, also a constant one).
    confidence: float
    r_squared: float
    statistics: TrendStatistics
    # |slope_per_minute| below this is "stable".
    threshold: float


class TimeRangeOut(BaseModel):
    start: UtcTimestamp
    end: UtcTimestamp


class CentralTendency(BaseModel):
    mean: float
    median: float


class Dispersion(BaseModel):
    stddev: float | None
    variance: float | None
    coefficient_of_variation: float | None
    range: float
    iqr: float


class Extremes(BaseModel):
    min: float
    max: float


class Percentiles(BaseModel):
    p25: float
    p50_median: float
    p75: float
    p95: float


class StatisticsBody(BaseModel):
    central_tendency: CentralTendency
    dispersion: Dispersion
    extremes: Extremes
    percentiles: Percentiles


class StatisticsOut(BaseModel):
    device_id: uuid.UUID
    metric: str
    unit: str | None
    data_points: int
    # First and last data point used.
    time_range: TimeRangeOut
    statistics: StatisticsBody


class Correlation(BaseModel):
    # Pearson r; null when either metric is constant over the pairs.
    coefficient: float | None
    strength: Literal["none", "weak", "moderate", "strong", "very strong", "undefined"]
    interpretation: str


class MetricStats(BaseModel):
    mean: float
    stddev: float | None


class CorrelationOut(BaseModel):
    device_id: uuid.UUID
    metric1: str
    metric2: str
    # Readings of both metrics at exactly the same timestamp.
    sample_size: int
    correlation: Correlation
    metric1_stats: MetricStats
    metric2_stats: MetricStats


class Historical(BaseModel):
    data_points: int
    start: UtcTimestamp
    end: UtcTimestamp
    mean: float
    last_value: float


class Model(BaseModel):
    type: Literal["linear_regression"]
    # value = intercept + slope × (seconds since `historical.start`)
    slope: float
    intercept: float
    equation: str
    r_squared: float


class ForecastPoint(BaseModel):
    timestamp: UtcTimestamp
    predicted_value: float
    # Prediction interval of a new reading at that time (Student's t, n - 2 degrees of freedom).
    confidence_lower: float
    confidence_upper: float


class Quality(BaseModel):
    rmse: float
    r_squared: float
    confidence_level: float
    sample_size: int


class ForecastParameters(BaseModel):
    steps: int
    avg_interval_seconds: float
    # Seconds from the last reading to the last forecast point.
    forecast_horizon: float


class ForecastOut(BaseModel):
    device_id: uuid.UUID
    metric: str
    historical: Historical
    model: Model
    forecast: list[ForecastPoint]
    quality: Quality
    parameters: ForecastParameters
