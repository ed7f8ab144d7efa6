"""API keys of the active tenant (tenant admins; keys cannot manage keys)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from iiot.apikeys import service
from iiot.apikeys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyList
from iiot.callers.access import TokenTenant
from iiot.errors import Forbidden, NotFound, Unauthorized, ValidationFailed, problem_responses
from iiot.http.routing import API_PREFIX, IIoTRoute
from iiot.runtime import get_runtime
from iiot.tenancy.context import TenantContext
from iiot.tenancy.roles import Role

router = APIRouter(prefix=f"{API_PREFIX}/api-keys", tags=["api keys"], route_class=IIoTRoute)

TenantAdmin = Annotated[TenantContext, Depends(TokenTenant(Role.admin, allow_api_keys=False))]


@router.get("", responses=problem_responses(Unauthorized, Forbidden, NotFound))
async def list_api_keys(
    request: Request,
    ctx: TenantAdmin,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> ApiKeyList:
    """List the tenant's API keys (never their secrets)."""
    async with get_runtime(request).db.tenant(ctx) as session:
        result = await service.list_keys(session, ctx, limit=limit, offset=offset)
    return result


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(Unauthorized, Forbidden, NotFound, ValidationFailed),
)
async def create_api_key(request: Request, ctx: TenantAdmin, body: ApiKeyCreate) -> ApiKeyCreated:
    """Create an API key; its secret `key` is shown only in this response."""
    async with get_runtime(request).db.tenant(ctx) as session:
        created = await service.create_key(session, ctx, body)
    return created


@router.delete(
    "/{id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(Unauthorized, Forbidden, NotFound),
)
async def revoke_api_key(request: Request, ctx: TenantAdmin, id: uuid.UUID) -> Response:
    """Revoke an API key; it is refused from the next request on."""
    async with get_runtime(request).db.tenant(ctx) as session:
        await service.revoke_key(session, ctx, id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
