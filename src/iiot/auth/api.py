"""Authentication routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from iiot.auth import service
from iiot.auth.principals import UserPrincipal
from iiot.auth.schemas import LoginRequest, RefreshRequest, SwitchTenantRequest, TokenPair, UserOut
from iiot.errors import (
    Forbidden,
    NotFound,
    RateLimited,
    TenantSuspended,
    Unauthorized,
    ValidationFailed,
    problem_responses,
)
from iiot.http.routing import IIoTRoute
from iiot.runtime import client_ip, get_runtime
from iiot.tenancy.access import AnyUser, Public

router = APIRouter(prefix="/auth", tags=["auth"], route_class=IIoTRoute)

CurrentUser = Annotated[UserPrincipal, Depends(AnyUser())]


@router.post(
    "/login",
    dependencies=[Depends(Public())],
    responses=problem_responses(Unauthorized, Forbidden, NotFound, RateLimited, ValidationFailed),
)
async def login(body: LoginRequest, request: Request) -> TokenPair:
    """Sign in with e-mail and password; returns an access and a refresh token."""
    rt = get_runtime(request)
    async with rt.db.system() as session:
        outcome = await service.login(
            session,
            rt,
            email=body.email,
            password=body.password,
            tenant_id=body.tenant_id,
            ip=client_ip(request),
        )
    return outcome.unwrap()


@router.post(
    "/refresh",
    dependencies=[Depends(Public())],
    responses=problem_responses(Unauthorized, TenantSuspended, ValidationFailed),
)
async def refresh(body: RefreshRequest, request: Request) -> TokenPair:
    """Exchange a refresh token for a new pair; the old one is spent."""
    rt = get_runtime(request)
    async with rt.db.system() as session:
        outcome = await service.refresh(
            session, rt, token=body.refresh_token, ip=client_ip(request)
        )
    return outcome.unwrap()


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[Depends(Public())],
    responses=problem_responses(ValidationFailed),
)
async def logout(body: RefreshRequest, request: Request) -> Response:
    """Revoke a refresh token and its whole family."""
    rt = get_runtime(request)
    async with rt.db.system() as session:
        await service.logout(session, token=body.refresh_token, ip=client_ip(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", responses=problem_responses(Unauthorized))
async def me(user: CurrentUser, request: Request) -> UserOut:
    """The signed-in user, with the active tenant and all memberships."""
    rt = get_runtime(request)
    async with rt.db.system() as session:
        return await service.me(session, user_id=user.user_id, tenant_id=user.token_tenant_id)


@router.post(
    "/switch-tenant",
    responses=problem_responses(Unauthorized, NotFound, TenantSuspended, ValidationFailed),
)
async def switch_tenant(
    body: SwitchTenantRequest, user: CurrentUser, request: Request
) -> TokenPair:
    """A new token pair whose active tenant is another of the user's memberships."""
    rt = get_runtime(request)
    async with rt.db.system() as session:
        return await service.switch_tenant(
            session, rt, user_id=user.user_id, tenant_id=body.tenant_id, ip=client_ip(request)
        )
