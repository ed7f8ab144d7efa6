"""Members of a tenant, invitations, and accepting an invitation."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status

from iiot import mail
from iiot.callers.access import PathTenant, Public
from iiot.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    NotFound,
    QuotaExceeded,
    TenantSuspended,
    Unauthorized,
    ValidationFailed,
    problem_responses,
)
from iiot.http.routing import API_PREFIX, IIoTRoute
from iiot.identity.schemas import TokenPair
from iiot.runtime import client_ip, get_runtime
from iiot.tenancy.context import TenantContext, system_context
from iiot.tenancy.roles import Role
from iiot.users import service
from iiot.users.schemas import (
    AcceptInvitation,
    InvitationOut,
    InviteRequest,
    MemberList,
    RoleOut,
    RoleUpdate,
)

router = APIRouter(prefix=API_PREFIX, tags=["members"], route_class=IIoTRoute)

Member = Annotated[TenantContext, Depends(PathTenant(Role.viewer))]
TenantAdmin = Annotated[TenantContext, Depends(PathTenant(Role.admin))]
UserId = Annotated[uuid.UUID, Path(description="The member's user id")]


@router.get(
    "/tenants/{id}/users",
    responses=problem_responses(Unauthorized, TenantSuspended, NotFound, ValidationFailed),
)
async def list_members(
    ctx: Member,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> MemberList:
    """Members of the tenant, active and invited."""
    async with get_runtime(request).db.tenant(ctx) as session:
        result = await service.list_members(session, ctx, limit=limit, offset=offset)
    return result


@router.post(
    "/tenants/{id}/users/invite",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(
        Unauthorized, Forbidden, QuotaExceeded, NotFound, Conflict, ValidationFailed
    ),
)
async def invite_member(
    body: InviteRequest, ctx: TenantAdmin, request: Request, response: Response
) -> InvitationOut:
    """Invite someone by e-mail (201; 200 when a pending invitation is re-sent and extended)."""
    rt = get_runtime(request)
    async with rt.db.tenant(ctx) as session:
        invitation, created = await service.invite(session, ctx, body, settings=rt.settings)
    mail.deliver_soon(rt)
    if not created:
        response.status_code = status.HTTP_200_OK
    return invitation


@router.patch(
    "/tenants/{id}/users/{user_id}/role",
    responses=problem_responses(Unauthorized, Forbidden, NotFound, Conflict, ValidationFailed),
)
async def change_member_role(
    body: RoleUpdate, ctx: TenantAdmin, user_id: UserId, request: Request
) -> RoleOut:
    """Change a member's role (`role`, or the original clients' `is_tenant_admin`)."""
    async with get_runtime(request).db.tenant(ctx) as session:
        result = await service.change_role(session, ctx, user_id, body)
    return result


@router.delete(
    "/tenants/{id}/users/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(Unauthorized, Forbidden, NotFound, Conflict, ValidationFailed),
)
async def remove_member(ctx: Member, user_id: UserId, request: Request) -> Response:
    """Remove a member or withdraw an invitation (admins; any member may remove themself)."""
    async with get_runtime(request).db.tenant(ctx) as session:
        await service.remove_member(session, ctx, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/invitations/accept",
    dependencies=[Depends(Public())],
    responses=problem_responses(BadRequest, Unauthorized, TenantSuspended, Gone, ValidationFailed),
)
async def accept_invitation(body: AcceptInvitation, request: Request) -> TokenPair:
    """Accept an invitation with the e-mailed token; returns a token pair for the tenant."""
    rt = get_runtime(request)
    async with rt.db.system() as session:
        tenant_id, invitation_id = await service.locate_invitation(session, body.token)
    ctx = system_context(tenant_id, client_ip=client_ip(request))
    async with rt.db.tenant(ctx) as session:
        pair = await service.accept_invitation(
            session,
            ctx,
            rt,
            invitation_id=invitation_id,
            token=body.token,
            password=body.password,
            full_name=body.full_name,
        )
    return pair
