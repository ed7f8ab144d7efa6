"""Rules of the active tenant: everyone reads, developers and admins change."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response, status

from iiot.callers.access import TokenTenant
from iiot.devices.presence import presence
from iiot.errors import Forbidden, NotFound, Unauthorized, ValidationFailed, problem_responses
from iiot.http.routing import API_PREFIX, IIoTRoute
from iiot.rules import service
from iiot.rules.schemas import (
    ParkedBatchList,
    RuleIn,
    RuleList,
    RuleOut,
    RuleSaved,
    RuleTestReport,
)
from iiot.runtime import get_runtime
from iiot.tenancy.context import TenantContext
from iiot.tenancy.roles import Role

router = APIRouter(prefix=f"{API_PREFIX}/rules", tags=["rules"], route_class=IIoTRoute)

Reader = Annotated[TenantContext, Depends(TokenTenant(Role.viewer))]
Developer = Annotated[TenantContext, Depends(TokenTenant(Role.developer))]
Admin = Annotated[TenantContext, Depends(TokenTenant(Role.admin))]
_ERRORS = problem_responses(Unauthorized, Forbidden, NotFound, ValidationFailed)
RuleBody = Annotated[RuleIn, Body()]


@router.get("", responses=_ERRORS)
async def list_rules(
    request: Request,
    ctx: Reader,
    enabled: bool | None = None,
    device_id: uuid.UUID | None = None,
    rule_type: Literal["threshold", "comparison", "statistical", "time_based"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> RuleList:
    """List the tenant's rules, highest priority first."""
    async with get_runtime(request).db.tenant(ctx) as session:
        result = await service.list_rules(
            session,
            ctx,
            enabled=enabled,
            device_id=device_id,
            rule_type=rule_type,
            limit=limit,
            offset=offset,
        )
    return result


@router.post("", status_code=status.HTTP_201_CREATED, responses=_ERRORS)
async def create_rule(request: Request, ctx: Developer, body: RuleBody) -> RuleSaved:
    """Create a rule; a webhook action's signing secret is shown only in this response."""
    rt = get_runtime(request)
    async with rt.db.tenant(ctx) as session:
        result = await service.create_rule(
            session, ctx, body, allow_private=rt.settings.webhook_allow_private
        )
    return result


@router.get("/parked-batches", responses=_ERRORS)
async def list_parked_batches(
    request: Request, ctx: Admin, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> ParkedBatchList:
    """Committed telemetry batches the rules engine parked after repeated failed evaluations
    (oldest first); they stay stored until an operator deals with them."""
    async with get_runtime(request).db.tenant(ctx) as session:
        return await service.parked_batches(session, ctx, limit)


@router.get("/{id}", responses=_ERRORS)
async def get_rule(request: Request, ctx: Reader, id: uuid.UUID) -> RuleOut:
    """One rule."""
    async with get_runtime(request).db.tenant(ctx) as session:
        result = await service.get_rule(session, ctx, id)
    return result


@router.put("/{id}", responses=_ERRORS)
async def update_rule(request: Request, ctx: Developer, id: uuid.UUID, body: RuleBody) -> RuleSaved:
    """Replace a rule; in effect for the next evaluated batch in every process."""
    rt = get_runtime(request)
    async with rt.db.tenant(ctx) as session:
        result = await service.update_rule(
            session, ctx, id, body, allow_private=rt.settings.webhook_allow_private
        )
    return result


@router.delete("/{id}", status_code=status.HTTP_204_NO_CONTENT, responses=_ERRORS)
async def delete_rule(request: Request, ctx: Developer, id: uuid.UUID) -> Response:
    """Delete a rule (its alerts stay)."""
    async with get_runtime(request).db.tenant(ctx) as session:
        await service.delete_rule(session, ctx, id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{id}/test", responses=_ERRORS)
async def test_rule(request: Request, ctx: Developer, id: uuid.UUID) -> RuleTestReport:
    """Evaluate the rule against current data, without changing state or running actions."""
    rt = get_runtime(request)
    seen = presence(rt)
    async with rt.db.tenant(ctx) as session:
        result = await service.test_rule(session, ctx, id, seen.last_seen)
    return result
