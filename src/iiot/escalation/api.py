"""Escalation policies and on-call schedules of the active tenant: every member reads,
developers and admins change."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request, Response, status
from pydantic import AwareDatetime

from iiot.callers.access import TokenTenant
from iiot.errors import (
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
    ValidationFailed,
    problem_responses,
)
from iiot.escalation import service
from iiot.escalation.schemas import (
    OnCallOut,
    OverrideIn,
    OverrideOut,
    PolicyIn,
    PolicyList,
    PolicyOut,
    PolicySaved,
    ScheduleIn,
    ScheduleList,
    ScheduleOut,
)
from iiot.http.routing import API_PREFIX, IIoTRoute
from iiot.runtime import get_runtime
from iiot.tenancy.context import TenantContext
from iiot.tenancy.roles import Role

policies = APIRouter(
    prefix=f"{API_PREFIX}/escalation-policies", tags=["escalation"], route_class=IIoTRoute
)
schedules = APIRouter(
    prefix=f"{API_PREFIX}/oncall-schedules", tags=["escalation"], route_class=IIoTRoute
)

Reader = Annotated[TenantContext, Depends(TokenTenant(Role.viewer))]
Developer = Annotated[TenantContext, Depends(TokenTenant(Role.developer))]
_ERRORS = problem_responses(Unauthorized, Forbidden, NotFound, Conflict, ValidationFailed)
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


@policies.get("", responses=_ERRORS)
async def list_policies(
    request: Request, ctx: Reader, limit: Limit = 100, offset: Offset = 0
) -> PolicyList:
    """The tenant's escalation policies, by name."""
    async with get_runtime(request).db.tenant(ctx) as session:
        result = await service.list_policies(session, ctx, limit=limit, offset=offset)
    return result


@policies.post("", status_code=status.HTTP_201_CREATED, responses=_ERRORS)
async def create_policy(
    request: Request, ctx: Developer, body: Annotated[PolicyIn, Body()]
) -> PolicySaved:
    """Create a policy; its webhook signing secret is shown only in this response."""
    rt = get_runtime(request)
    async with rt.db.tenant(ctx) as session:
        result = await service.create_policy(
            session, ctx, body, allow_private=rt.settings.webhook_allow_private
        )
    return result


@policies.get("/{id}", responses=_ERRORS)
async def get_policy(request: Request, ctx: Reader, id: uuid.UUID) -> PolicyOut:
    """One escalation policy."""
    async with get_runtime(request).db.tenant(ctx) as session:
        result = await service.get_policy(session, ctx, id)
    return result


@policies.put("/{id}", responses=_ERRORS)
async def update_policy(
    request: Request, ctx: Developer, id: uuid.UUID, body: Annotated[PolicyIn, Body()]
) -> PolicySaved:
    """Replace a policy; tiers already fired for an alert are not fired again."""
    rt = get_runtime(request)
    async with rt.db.tenant(ctx) as session:
        result = await service.update_policy(
            session, ctx, id, body, allow_private=rt.settings.webhook_allow_private
        )
    return result


@policies.delete("/{id}", status_code=status.HTTP_204_NO_CONTENT, responses=_ERRORS)
async def delete_policy(request: Request, ctx: Developer, id: uuid.UUID) -> Response:
    """Delete a policy (alert histories keep its escalations)."""
    async with get_runtime(request).db.tenant(ctx) as session:
        await service.delete_policy(session, ctx, id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@schedules.get("", responses=_ERRORS)
async def list_schedules(
    request: Request, ctx: Reader, limit: Limit = 100, offset: Offset = 0
) -> ScheduleList:
    """The tenant's on-call schedules, by name, with their overrides not yet ended."""
    async with get_runtime(request).db.tenant(ctx) as session:
        result = await service.list_schedules(session, ctx, limit=limit, offset=offset)
    return result


@schedules.post("", status_code=status.HTTP_201_CREATED, responses=_ERRORS)
async def create_schedule(
    request: Request, ctx: Developer, body: Annotated[ScheduleIn, Body()]
) -> ScheduleOut:
    """Create a weekly rotation; name it in a policy tier as `schedule:<id>`."""
    async with get_runtime(request).db.tenant(ctx) as session:
        result = await service.create_schedule(session, ctx, body)
    return result


@schedules.get("/{id}", responses=_ERRORS)
async def get_schedule(request: Request, ctx: Reader, id: uuid.UUID) -> ScheduleOut:
    """One on-call schedule."""
    async with get_runtime(request).db.tenant(ctx) as session:
        result = await service.get_schedule(session, ctx, id)
    return result


@schedules.put("/{id}", responses=_ERRORS)
async def update_schedule(
    request: Request, ctx: Developer, id: uuid.UUID, body: Annotated[ScheduleIn, Body()]
) -> ScheduleOut:
    """Replace a schedule's rotation (its overrides stay)."""
    async with get_runtime(request).db.tenant(ctx) as session:
        result = await service.update_schedule(session, ctx, id, body)
    return result


@schedules.delete("/{id}", status_code=status.HTTP_204_NO_CONTENT, responses=_ERRORS)
async def delete_schedule(request: Request, ctx: Developer, id: uuid.UUID) -> Response:
    """Delete a schedule; 409 while an escalation policy names it."""
    async with get_runtime(request).db.tenant(ctx) as session:
        await service.delete_schedule(session, ctx, id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@schedules.get("/{id}/on-call", responses=_ERRORS)
async def on_call(
    request: Request,
    ctx: Reader,
    id: uuid.UUID,
    at: Annotated[AwareDatetime | None, Query(description="Default: now")] = None,
) -> OnCallOut:
    """Who is on call at `at`: an override covering it, else the rotation."""
    async with get_runtime(request).db.tenant(ctx) as session:
        result = await service.who_is_on_call(session, ctx, id, at)
    return result


@schedules.post("/{id}/overrides", status_code=status.HTTP_201_CREATED, responses=_ERRORS)
async def add_override(
    request: Request, ctx: Developer, id: uuid.UUID, body: Annotated[OverrideIn, Body()]
) -> OverrideOut:
    """Put someone else on call for a period (the newest override wins where they overlap)."""
    async with get_runtime(request).db.tenant(ctx) as session:
        result = await service.add_override(session, ctx, id, body)
    return result


@schedules.delete(
    "/{id}/overrides/{override_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_ERRORS
)
async def delete_override(
    request: Request, ctx: Developer, id: uuid.UUID, override_id: uuid.UUID
) -> Response:
    """Remove an override."""
    async with get_runtime(request).db.tenant(ctx) as session:
        await service.delete_override(session, ctx, id, override_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
