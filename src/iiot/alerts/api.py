"""Alerts of the active tenant: list, detail with history, and the lifecycle transitions."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from iiot.alerts import service
from iiot.alerts.repository import AlertFilter
from iiot.alerts.schemas import AlertDetail, AlertList, AlertState, Severity, TransitionIn
from iiot.callers.access import TokenTenant
from iiot.errors import (
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
    ValidationFailed,
    problem_responses,
)
from iiot.http.routing import API_PREFIX, IIoTRoute
from iiot.runtime import get_runtime
from iiot.tenancy.context import TenantContext
from iiot.tenancy.roles import Role
from iiot.validation import BoundedDatetime

router = APIRouter(prefix=f"{API_PREFIX}/alerts", tags=["alerts"], route_class=IIoTRoute)

Reader = Annotated[TenantContext, Depends(TokenTenant(Role.viewer))]
Operator = Annotated[TenantContext, Depends(TokenTenant(Role.operator))]
_READ_ERRORS = problem_responses(Unauthorized, Forbidden, NotFound, ValidationFailed)
_MOVE_ERRORS = problem_responses(Unauthorized, Forbidden, NotFound, Conflict, ValidationFailed)


@router.get("", responses=_READ_ERRORS)
async def list_alerts(
    request: Request,
    ctx: Reader,
    state: AlertState | None = None,
    severity: Severity | None = None,
    device_id: uuid.UUID | None = None,
    rule_id: uuid.UUID | None = None,
    since: Annotated[
        BoundedDatetime | None, Query(description="Raised at or after (RFC 3339 with offset)")
    ] = None,
    until: Annotated[
        BoundedDatetime | None, Query(description="Raised before (RFC 3339 with offset)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> AlertList:
    """List alerts, newest first, filtered by state, severity, device, rule and time."""
    f = AlertFilter(state, severity, device_id, rule_id, since, until)
    async with get_runtime(request).db.tenant(ctx) as session:
        result = await service.list_alerts(session, ctx, f, limit=limit, offset=offset)
    return result


@router.get("/{id}", responses=_READ_ERRORS)
async def get_alert(request: Request, ctx: Reader, id: uuid.UUID) -> AlertDetail:
    """One alert with its state history and SLA status."""
    async with get_runtime(request).db.tenant(ctx) as session:
        result = await service.get_alert(session, ctx, id)
    return result


async def _transition(
    request: Request, ctx: TenantContext, id: uuid.UUID, action: str, body: TransitionIn | None
) -> AlertDetail:
    notes = body.notes if body else None
    async with get_runtime(request).db.tenant(ctx) as session:
        result = await service.transition(session, ctx, id, action, notes)
    return result


@router.post("/{id}/acknowledge", responses=_MOVE_ERRORS)
async def acknowledge_alert(
    request: Request, ctx: Operator, id: uuid.UUID, body: TransitionIn | None = None
) -> AlertDetail:
    """Acknowledge a new alert."""
    return await _transition(request, ctx, id, "acknowledge", body)


@router.post("/{id}/investigate", responses=_MOVE_ERRORS)
async def investigate_alert(
    request: Request, ctx: Operator, id: uuid.UUID, body: TransitionIn | None = None
) -> AlertDetail:
    """Mark an acknowledged alert as under investigation."""
    return await _transition(request, ctx, id, "investigate", body)


@router.post("/{id}/resolve", responses=_MOVE_ERRORS)
async def resolve_alert(
    request: Request, ctx: Operator, id: uuid.UUID, body: TransitionIn | None = None
) -> AlertDetail:
    """Resolve an alert (final)."""
    return await _transition(request, ctx, id, "resolve", body)
