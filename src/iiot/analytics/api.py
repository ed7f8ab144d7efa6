"""Analytics routes (the original platform's five): read access to the active tenant's devices."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import AwareDatetime

from iiot.analytics import service
from iiot.analytics.schemas import (
    CorrelationOut,
    ForecastOut,
    StatisticsOut,
    TimeseriesOut,
    TrendOut,
)
from iiot.callers.access import TokenTenant
from iiot.errors import (
    Forbidden,
    NotFound,
    TenantSuspended,
    Unauthorized,
    ValidationFailed,
    problem_responses,
)
from iiot.http.routing import API_PREFIX, IIoTRoute
from iiot.runtime import get_runtime
from iiot.tenancy.context import TenantContext
from iiot.tenancy.roles import Role

router = APIRouter(prefix=f"{API_PREFIX}/analytics", tags=["analytics"], route_class=IIoTRoute)

Reader = Annotated[TenantContext, Depends(TokenTenant(Role.viewer))]
Metric = Annotated[str, Path(min_length=1, max_length=255, description="Telemetry key")]
From = Annotated[
    AwareDatetime | None,
    Query(alias="from", description="Inclusive start (RFC 3339); default: a day before `to`"),
]
To = Annotated[
    AwareDatetime | None, Query(alias="to", description="Exclusive end (RFC 3339); default: now")
]
_ERRORS = problem_responses(Unauthorized, Forbidden, TenantSuspended, NotFound, ValidationFailed)


@router.get("/timeseries/{device_id}/{metric}", responses=_ERRORS)
async def timeseries(
    request: Request,
    ctx: Reader,
    device_id: uuid.UUID,
    metric: Metric,
    start: From = None,
    end: To = None,
    window: Annotated[int, Query(ge=1, le=1000, description="Moving-average points")] = 5,
    limit: Annotated[int, Query(ge=1, le=10_000, description="Newest readings returned")] = 1000,
) -> TimeseriesOut:
    """Readings with their moving average and rate of change per minute, oldest first."""
    async with get_runtime(request).db.tenant(ctx) as session:
        return await service.timeseries(
            session,
            ctx,
            device_id=device_id,
            metric=metric,
            start=start,
            end=end,
            window=window,
            limit=limit,
        )


@router.get("/trends/{device_id}/{metric}", responses=_ERRORS)
async def trends(
    request: Request,
    ctx: Reader,
    device_id: uuid.UUID,
    metric: Metric,
    start: From = None,
    end: To = None,
    threshold: Annotated[
        float, Query(ge=0, le=1e12, description="|slope per minute| below this is stable")
    ] = 0.01,
) -> TrendOut:
    """Least-squares trend of a metric over the range (at least two readings)."""
    async with get_runtime(request).db.tenant(ctx) as session:
        return await service.trends(
            session,
            ctx,
            device_id=device_id,
            metric=metric,
            start=start,
            end=end,
            threshold=threshold,
        )


@router.get("/statistics/{device_id}/{metric}", responses=_ERRORS)
async def statistics(
    request: Request,
    ctx: Reader,
    device_id: uuid.UUID,
    metric: Metric,
    start: From = None,
    end: To = None,
) -> StatisticsOut:
    """Central tendency, dispersion, extremes and percentiles of a metric over the range."""
    async with get_runtime(request).db.tenant(ctx) as session:
        return await service.statistics(
            session, ctx, device_id=device_id, metric=metric, start=start, end=end
        )


@router.get("/correlation/{device_id}", responses=_ERRORS)
async def correlation(
    request: Request,
    ctx: Reader,
    device_id: uuid.UUID,
    metric1: Annotated[str | None, Query(min_length=1, max_length=255)] = None,
    metric2: Annotated[str | None, Query(min_length=1, max_length=255)] = None,
    start: From = None,
    end: To = None,
) -> CorrelationOut:
    """Pearson correlation of two metrics over readings taken at the same timestamps
    (`metric1` and `metric2` are required)."""
    async with get_runtime(request).db.tenant(ctx) as session:
        return await service.correlation(
            session,
            ctx,
            device_id=device_id,
            metric1=metric1,
            metric2=metric2,
            start=start,
            end=end,
        )


@router.get("/forecast/{device_id}/{metric}", responses=_ERRORS)
async def forecast(
    request: Request,
    ctx: Reader,
    device_id: uuid.UUID,
    metric: Metric,
    start: From = None,
    end: To = None,
    steps: Annotated[int, Query(ge=1, le=1000)] = 10,
    confidence: Annotated[float, Query(gt=0.5, lt=1.0, description="e.g. 0.95")] = 0.95,
) -> ForecastOut:
    """Linear-regression forecast with prediction intervals (at least three readings)."""
    async with get_runtime(request).db.tenant(ctx) as session:
        return await service.forecast(
            session,
            ctx,
            device_id=device_id,
            metric=metric,
            start=start,
            end=end,
            steps=steps,
            confidence=confidence,
        )
