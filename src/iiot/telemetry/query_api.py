"""Telemetry query routes: raw points, latest values, aggregates and statistics."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from iiot.callers.access import TokenTenant
from iiot.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    TenantSuspended,
    Unauthorized,
    ValidationFailed,
    problem_responses,
)
from iiot.http.routing import API_PREFIX, IIoTRoute
from iiot.runtime import get_runtime
from iiot.telemetry import query_service
from iiot.telemetry.query_schemas import (
    AggregateFn,
    AggregateResult,
    LatestTelemetry,
    RawTelemetryPage,
    TelemetryStatistics,
)
from iiot.tenancy.context import TenantContext
from iiot.tenancy.roles import Role
from iiot.validation import BoundedDatetime

router = APIRouter(prefix=f"{API_PREFIX}/telemetry", tags=["telemetry"], route_class=IIoTRoute)

Reader = Annotated[TenantContext, Depends(TokenTenant(Role.viewer))]
DeviceId = Annotated[uuid.UUID, Query(description="Device of the active tenant")]
Key = Annotated[str, Query(min_length=1, max_length=255, description="Telemetry key")]
Start = Annotated[
    BoundedDatetime | None,
    Query(
        description="Inclusive start (RFC 3339 with offset, 1970..2200); default: a day before "
        "end. The range may span at most 31 days (366 for aggregates)."
    ),
]
End = Annotated[
    BoundedDatetime | None,
    Query(description="Exclusive end (RFC 3339 with offset); default: now"),
]
_ERRORS = (Unauthorized, Forbidden, TenantSuspended, NotFound, ValidationFailed)


def _json(model: BaseModel) -> Response:
    # Up to 10,000 rows per answer: serialised once, by pydantic-core, instead of going through
    # FastAPI's validate-then-encode path (the route's response_model still documents it).
    return Response(content=model.model_dump_json(), media_type="application/json")


@router.get("", response_model=RawTelemetryPage, responses=problem_responses(BadRequest, *_ERRORS))
async def raw_telemetry(
    request: Request,
    ctx: Reader,
    device_id: DeviceId,
    start: Start = None,
    end: End = None,
    key: Annotated[str | None, Query(min_length=1, max_length=255)] = None,
    limit: Annotated[int, Query(ge=1, le=query_service.MAX_LIMIT)] = 1000,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
) -> Response:
    """Raw points of a device, newest first, paged with an opaque cursor."""
    rt = get_runtime(request)
    async with rt.db.tenant(ctx) as session:
        page = await query_service.raw_points(
            session,
            ctx,
            device_id=device_id,
            key=key,
            start=start,
            end=end,
            limit=limit,
            cursor=cursor,
        )
    return _json(page)


@router.get("/latest", response_model=LatestTelemetry, responses=problem_responses(*_ERRORS))
async def latest_telemetry(
    request: Request,
    ctx: Reader,
    device_id: Annotated[uuid.UUID | None, Query(description="Omit for the whole tenant")] = None,
    limit: Annotated[int, Query(ge=1, le=query_service.MAX_LIMIT)] = 1000,
) -> Response:
    """The newest value of each key, for one device or for every device of the tenant."""
    rt = get_runtime(request)
    async with rt.db.tenant(ctx) as session:
        latest = await query_service.latest_values(session, ctx, device_id=device_id, limit=limit)
    return _json(latest)


@router.get("/aggregate", response_model=AggregateResult, responses=problem_responses(*_ERRORS))
async def aggregate_telemetry(
    request: Request,
    ctx: Reader,
    device_id: DeviceId,
    key: Key,
    interval: Annotated[
        str,
        Query(
            max_length=7,
            pattern=r"^[1-9][0-9]{0,5}[smhd]$",
            description="Bucket width: a count and a unit (s, m, h, d), e.g. 1m, 5m, 1h, 1d; "
            "at most 366 days and 10,000 buckets over the range",
        ),
    ],
    fn: AggregateFn = "avg",
    start: Start = None,
    end: End = None,
) -> Response:
    """Numeric values of one key in UTC-aligned time buckets (avg, min, max, sum or count)."""
    rt = get_runtime(request)
    async with rt.db.tenant(ctx) as session:
        result = await query_service.aggregate(
            session,
            ctx,
            device_id=device_id,
            key=key,
            start=start,
            end=end,
            interval=interval,
            fn=fn,
        )
    return Response(content=result.to_json(), media_type="application/json")


@router.get(
    "/statistics", response_model=TelemetryStatistics, responses=problem_responses(*_ERRORS)
)
async def telemetry_statistics(
    request: Request,
    ctx: Reader,
    device_id: DeviceId,
    key: Key,
    start: Start = None,
    end: End = None,
) -> Response:
    """Count, mean, min, max, standard deviation and percentiles of one key over a range."""
    rt = get_runtime(request)
    async with rt.db.tenant(ctx) as session:
        stats = await query_service.statistics(
            session, ctx, device_id=device_id, key=key, start=start, end=end
        )
    return _json(stats)
