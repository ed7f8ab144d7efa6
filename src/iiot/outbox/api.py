"""What the outbox gave up on, shown to the tenant's admins."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

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
from iiot.mail import outbox as mail_outbox
from iiot.notifications import webhooks
from iiot.outbox.schemas import ParkedMessageOut, ParkedMessages
from iiot.runtime import get_runtime
from iiot.tenancy.context import TenantContext
from iiot.tenancy.roles import Role

router = APIRouter(prefix=API_PREFIX, tags=["outbox"], route_class=IIoTRoute)


@router.get(
    "/tenants/{id}/outbox/parked",
    responses=problem_responses(
        Unauthorized, Forbidden, TenantSuspended, NotFound, ValidationFailed
    ),
)
async def parked_messages(
    ctx: Annotated[TenantContext, Depends(PathTenant(Role.admin))],
    request: Request,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ParkedMessages:
    """E-mails and webhook calls of the tenant that failed every attempt and are no longer
    retried, newest first (no body, no signing secret)."""
    async with get_runtime(request).db.tenant(ctx) as session:
        found = await mail_outbox.parked(session, ctx.tenant_id, limit)
        found += await webhooks.parked(session, ctx, limit)
    found.sort(key=lambda p: (p.created_at, str(p.id)), reverse=True)
    return ParkedMessages(messages=[ParkedMessageOut(**asdict(p)) for p in found[:limit]])
