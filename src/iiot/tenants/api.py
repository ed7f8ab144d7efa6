"""Tenant management routes (system admins; members read their own tenant) and tiers."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from pydantic import BaseModel, TypeAdapter

from iiot.callers.access import AnyUser, PathTenant, PathTenantScope, SystemAdmin
from iiot.callers.resolver import TenantRead, deleted_tenant_context, new_tenant_context
from iiot.db.session import TenantScope
from iiot.errors import (
    Conflict,
    Forbidden,
    NotFound,
    TenantSuspended,
    Unauthorized,
    ValidationFailed,
    problem_responses,
)
from iiot.http.fast_routes import FastRoute
from iiot.http.routing import API_PREFIX, IIoTRoute
from iiot.runtime import client_ip, get_runtime
from iiot.tenancy.context import TenantContext
from iiot.tenancy.principals import UserPrincipal
from iiot.tenancy.roles import Role
from iiot.tenants import service
from iiot.tenants.access import SystemAdminOnTenant, TenantUsageRead
from iiot.tenants.schemas import (
    SLUG_PATTERN,
    DailyUsage,
    TenantCreate,
    TenantList,
    TenantOut,
    TenantQuotas,
    TenantStats,
    TenantUpdate,
    TierOut,
    TierUpdate,
)

router = APIRouter(prefix=API_PREFIX, tags=["tenants"], route_class=IIoTRoute)

Admin = Annotated[UserPrincipal, Depends(SystemAdmin())]
# A member's read, the caller resolved in the route's own transaction (one transaction in all).
MemberRead = Annotated[TenantScope, Depends(PathTenantScope(Role.viewer), scope="function")]
# A member's read of the usage figures: the caller resolved and the figures read in one
# statement (one round trip). The same policy objects guard the routes' fast twins below.
STATS_READ = TenantUsageRead(Role.viewer, figures=service.STATS_FIGURES)
QUOTAS_READ = TenantUsageRead(Role.viewer, figures=service.QUOTA_FIGURES)
StatsRead = Annotated[TenantRead, Depends(STATS_READ)]
QuotasRead = Annotated[TenantRead, Depends(QUOTAS_READ)]
TenantAdmin = Annotated[TenantContext, Depends(PathTenant(Role.admin))]
Operator = Annotated[TenantContext, Depends(SystemAdminOnTenant())]

_READ = problem_responses(Unauthorized, TenantSuspended, NotFound, ValidationFailed)
_PLATFORM = problem_responses(Unauthorized, Forbidden, NotFound, ValidationFailed)


@router.get("/tenants", responses=problem_responses(Unauthorized, Forbidden, ValidationFailed))
async def list_tenants(
    admin: Admin,
    request: Request,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    tier: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
    status: Annotated[Literal["active", "suspended", "trial", "churned"] | None, Query()] = None,
    search: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> TenantList:
    """List tenants (system admin), filtered by tier, status or a name/slug search."""
    rt = get_runtime(request)
    async with rt.db.system() as session:
        result = await service.list_tenants(
            session, page=page, limit=limit, tier=tier, status=status, search=search
        )
    return result


@router.post(
    "/tenants",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(Unauthorized, Forbidden, Conflict, ValidationFailed),
)
async def create_tenant(body: TenantCreate, admin: Admin, request: Request) -> TenantOut:
    """Create a tenant (system admin); 409 when the slug is taken."""
    rt = get_runtime(request)
    ctx = new_tenant_context(request, admin)
    async with rt.db.tenant(ctx) as session:
        result = await service.create_tenant(session, ctx, body)
    return result


@router.get("/tenants/{id}", responses=_READ)
async def get_tenant(scope: MemberRead) -> TenantOut:
    """A tenant's details (its members and system admins)."""
    return await service.get_tenant(scope.session, scope.ctx)


@router.patch("/tenants/{id}", responses=_PLATFORM | problem_responses(Conflict, TenantSuspended))
async def update_tenant(body: TenantUpdate, ctx: TenantAdmin, request: Request) -> TenantOut:
    """Update a tenant: its admins may change name, branding and settings; system admins all."""
    async with get_runtime(request).db.tenant(ctx) as session:
        result = await service.update_tenant(session, ctx, body)
    return result


@router.delete("/tenants/{id}", status_code=status.HTTP_204_NO_CONTENT, responses=_PLATFORM)
async def delete_tenant(
    ctx: Operator,
    request: Request,
    confirm: Annotated[
        str,
        Query(
            min_length=3,
            max_length=63,
            pattern=SLUG_PATTERN,
            description="The tenant's slug, repeated to confirm",
        ),
    ],
) -> Response:
    """Delete a tenant (system admin): it disappears at once, can be restored for 30 days,
    then is purged with all its data."""
    async with get_runtime(request).db.tenant(ctx) as session:
        await service.delete_tenant(session, ctx, confirm=confirm)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/tenants/{id}/restore", responses=_PLATFORM | problem_responses(Conflict))
async def restore_tenant(
    admin: Admin, request: Request, id: Annotated[uuid.UUID, Path(description="Tenant id")]
) -> TenantOut:
    """Restore a deleted tenant with its data (system admin; within 30 days of deletion)."""
    ctx = deleted_tenant_context(request, admin, id)
    async with get_runtime(request).db.tenant(ctx) as session:
        result = await service.restore_tenant(session, ctx)
    return result


@router.post("/tenants/{id}/suspend", responses=_PLATFORM)
async def suspend_tenant(ctx: Operator, request: Request) -> TenantOut:
    """Suspend a tenant (system admin): its members are refused until it is activated."""
    async with get_runtime(request).db.tenant(ctx) as session:
        result = await service.set_status(session, ctx, "suspended")
    return result


@router.post("/tenants/{id}/activate", responses=_PLATFORM)
async def activate_tenant(ctx: Operator, request: Request) -> TenantOut:
    """Activate a tenant (system admin)."""
    async with get_runtime(request).db.tenant(ctx) as session:
        result = await service.set_status(session, ctx, "active")
    return result


def _json(model: BaseModel) -> Response:
    # Serialised once, by pydantic-core, instead of going through FastAPI's validate-then-encode
    # path (the route's response_model still documents it): these are the hottest reads.
    return Response(content=model.model_dump_json(), media_type="application/json")


@router.get("/tenants/{id}/stats", response_model=TenantStats, responses=_READ)
async def tenant_stats(read: StatsRead) -> Response:
    """Counts of devices, members, rules, alerts and today's telemetry, with quota use."""
    return _json(service.tenant_stats(read.ctx.tenant_id, read.limits, read.values))


@router.get("/tenants/{id}/quotas", response_model=TenantQuotas, responses=_READ)
async def tenant_quotas(read: QuotasRead) -> Response:
    """Use of each quota against the tenant's effective limit."""
    return _json(service.tenant_quotas(read.limits, read.values))


# The stats and quotas reads are the hottest member requests: their fast twins
# (`iiot.http.fast_routes`) call the same policy objects and the same endpoints without
# FastAPI's route matching and dependency solving. The tenant id is validated exactly as
# FastAPI validates the declared `{id}`; an invalid one is left to the declared route (422).
_TENANT_ID = TypeAdapter(uuid.UUID)


def _tenant_id(segment: str) -> uuid.UUID:
    return _TENANT_ID.validate_python(segment)


async def _stats_lean(request: Request, read: TenantRead) -> Response:
    return await tenant_stats(read)


async def _quotas_lean(request: Request, read: TenantRead) -> Response:
    return await tenant_quotas(read)


FAST_STATS = FastRoute(
    method="GET",
    path="/tenants/{id}/stats",
    access=STATS_READ,
    endpoint=_stats_lean,
    convert=_tenant_id,
)
FAST_QUOTAS = FastRoute(
    method="GET",
    path="/tenants/{id}/quotas",
    access=QUOTAS_READ,
    endpoint=_quotas_lean,
    convert=_tenant_id,
)


@router.get("/tenants/{id}/usage/daily", responses=_READ)
async def tenant_daily_usage(
    scope: MemberRead,
    days: Annotated[int, Query(ge=1, le=400, description="How many UTC days, up to today")] = 30,
) -> DailyUsage:
    """Telemetry points accepted per UTC day over the last `days` days (today included)."""
    return await service.daily_usage(scope.session, scope.ctx, days=days)


@router.get("/tiers", dependencies=[Depends(AnyUser())], responses=problem_responses(Unauthorized))
async def list_tiers(request: Request) -> list[TierOut]:
    """The tiers and their default limits."""
    async with get_runtime(request).db.system() as session:
        result = await service.list_tiers(session)
    return result


@router.patch("/tiers/{name}", responses=_PLATFORM)
async def update_tier(
    body: TierUpdate,
    admin: Admin,
    request: Request,
    name: Annotated[str, Path(min_length=1, max_length=32)],
) -> TierOut:
    """Change a tier's default limits (system admin); tenants without their own values follow."""
    async with get_runtime(request).db.system() as session:
        result = await service.update_tier(
            session, name, body, actor_id=admin.user_id, ip=client_ip(request)
        )
    return result
