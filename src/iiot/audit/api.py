"""A tenant's audit trail."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime

from iiot.audit.schemas import AuditPage
from iiot.audit.service import list_events
from iiot.callers.access import PathTenant
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

router = APIRouter(prefix=API_PREFIX, tags=["audit"], route_class=IIoTRoute)


@router.get(
    "/tenants/{id}/audit",
    responses=problem_responses(
        Unauthorized, Forbidden, TenantSuspended, NotFound, ValidationFailed
    ),
)
async def tenant_audit(
    ctx: Annotated[TenantContext, Depends(PathTenant(Role.admin))],
    request: Request,
    action: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    actor: Annotated[uuid.UUID | None, Query(description="Acting user, device or key id")] = None,
    target_type: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
    target_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    since: Annotated[AwareDatetime | None, Query()] = None,
    until: Annotated[AwareDatetime | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> AuditPage:
    """The tenant's audit events, newest first (action prefix, actor, target, time range)."""
    async with get_runtime(request).db.tenant(ctx) as session:
        result = await list_events(
            session,
            ctx,
            action=action,
            actor_id=actor,
            target_type=target_type,
            target_id=target_id,
            since=since,
            until=until,
            limit=limit,
            offset=offset,
        )
    return result
