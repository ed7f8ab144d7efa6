"""The usage report route: what the usage meter counted for a tenant (iiot.metering)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from iiot.callers.access import PathTenant
from iiot.errors import NotFound, TenantSuspended, Unauthorized, ValidationFailed, problem_responses
from iiot.http.routing import API_PREFIX, IIoTRoute
from iiot.metering import service
from iiot.metering.meter import utc_today
from iiot.metering.schemas import UsageReport
from iiot.runtime import get_runtime
from iiot.tenancy.context import TenantContext
from iiot.tenancy.roles import Role

router = APIRouter(prefix=API_PREFIX, tags=["tenants"], route_class=IIoTRoute)

Member = Annotated[TenantContext, Depends(PathTenant(Role.viewer))]


@router.get(
    "/tenants/{id}/usage",
    responses=problem_responses(Unauthorized, TenantSuspended, NotFound, ValidationFailed),
)
async def tenant_usage(
    ctx: Member,
    request: Request,
    from_: Annotated[date | None, Query(alias="from", description="First UTC day")] = None,
    to: Annotated[date | None, Query(description="Last UTC day (inclusive)")] = None,
    granularity: Annotated[Literal["day", "month"], Query()] = "day",
    top: Annotated[int, Query(ge=0, le=100, description="Devices listed by points")] = 10,
) -> UsageReport:
    """API requests, device messages, points, rule evaluations, e-mails and webhooks per UTC
    day or month, and the devices with the most points (members and system admins).

    Figures are written by a periodic flush: the last `flush_interval_seconds` of traffic
    may not be counted yet."""
    rt = get_runtime(request)
    end = to or utc_today()
    start = from_ or end.replace(day=1)
    async with rt.db.tenant(ctx) as session:
        return await service.usage_report(
            session,
            ctx,
            start=start,
            end=end,
            granularity=granularity,
            top=top,
            flush_interval_seconds=rt.settings.usage_flush_seconds,
        )
