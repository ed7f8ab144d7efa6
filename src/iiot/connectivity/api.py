"""User routes of the device API: a device's attributes and RPC calls to it."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response, status

from iiot.callers.access import TokenTenant
from iiot.connectivity import attributes_service, rpc_service
from iiot.connectivity.errors import DeviceOffline, RpcTimeout
from iiot.connectivity.schemas import DeviceAttributes, RpcIn, RpcList, RpcOut
from iiot.connectivity.tb_json import split_keys
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
from iiot.validation import JsonObject

router = APIRouter(
    prefix=f"{API_PREFIX}/devices", tags=["device attributes and RPC"], route_class=IIoTRoute
)

Reader = Annotated[TenantContext, Depends(TokenTenant(Role.viewer))]
Developer = Annotated[TenantContext, Depends(TokenTenant(Role.developer))]
Operator = Annotated[TenantContext, Depends(TokenTenant(Role.operator))]
DeviceId = Annotated[uuid.UUID, Path(description="Device id")]

_ERRORS = (Unauthorized, Forbidden, TenantSuspended, NotFound, ValidationFailed)

_ATTRIBUTES_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "key: any JSON value",
                    "additionalProperties": True,
                },
                "example": {"target_temperature": 21.5, "mode": "eco"},
            }
        },
    }
}


@router.get("/{id}/attributes", responses=problem_responses(*_ERRORS))
async def get_attributes(request: Request, ctx: Reader, id: DeviceId) -> DeviceAttributes:
    """A device's attributes by scope (`client`, `shared`, `server`) with update times."""
    rt = get_runtime(request)
    async with rt.db.tenant(ctx) as session:
        view = await attributes_service.user_view(session, ctx, id)
    return view


@router.post(
    "/{id}/attributes/{scope}",
    responses=problem_responses(*_ERRORS),
    openapi_extra=_ATTRIBUTES_BODY,
)
async def save_attributes(
    request: Request,
    ctx: Developer,
    id: DeviceId,
    scope: Annotated[
        Literal["shared", "server"],
        Path(description="`shared` (pushed to the device) or `server`; `client` is the device's"),
    ],
    values: Annotated[JsonObject, Body()],
) -> DeviceAttributes:
    """Create or replace shared or server attributes; shared ones are pushed to the device's
    live sessions once committed."""
    rt = get_runtime(request)
    async with rt.db.tenant(ctx) as session:
        await attributes_service.save(session, ctx, id, scope, values, audit=True)
    async with rt.db.tenant(ctx) as session:
        view = await attributes_service.user_view(session, ctx, id)
    return view


@router.delete(
    "/{id}/attributes/{scope}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(*_ERRORS),
)
async def delete_attributes(
    request: Request,
    ctx: Developer,
    id: DeviceId,
    scope: Annotated[Literal["client", "shared", "server"], Path(description="Attribute scope")],
    keys: Annotated[
        str | None, Query(max_length=65_536, description="Comma-separated keys (required)")
    ] = None,
) -> Response:
    """Delete attributes of one scope; deleted shared attributes are announced to the device."""
    rt = get_runtime(request)
    async with rt.db.tenant(ctx) as session:
        await attributes_service.delete(session, ctx, id, scope, split_keys(keys) or [])
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{id}/rpc",
    responses={
        202: {"model": RpcOut, "description": "One-way call delivered"},
        **problem_responses(*_ERRORS, DeviceOffline, RpcTimeout),
    },
)
async def call_device(
    request: Request, response: Response, ctx: Operator, id: DeviceId, body: RpcIn
) -> RpcOut:
    """Call a method on the device. Two-way: 200 with the device's reply in `response`, 504
    `rpc_timeout` without one in `timeout_ms`. One-way: 202 once a session took it. 409
    `device_offline` when no live session of the device can take it."""
    out = await rpc_service.call(get_runtime(request), ctx, id, body)
    if body.oneway:
        response.status_code = status.HTTP_202_ACCEPTED
    return out


@router.get("/{id}/rpc", responses=problem_responses(*_ERRORS))
async def list_rpc(
    request: Request,
    ctx: Reader,
    id: DeviceId,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> RpcList:
    """Calls to the device, newest first, with status, times and replies."""
    rt = get_runtime(request)
    async with rt.db.tenant(ctx) as session:
        found = await rpc_service.page(session, ctx, id, limit=limit, offset=offset)
    return found


@router.get("/{id}/rpc/{rpc_id}", responses=problem_responses(*_ERRORS))
async def get_rpc(
    request: Request,
    ctx: Reader,
    id: DeviceId,
    rpc_id: Annotated[int, Path(ge=1, le=2**62, description="RPC request id")],
) -> RpcOut:
    """One call to the device."""
    rt = get_runtime(request)
    async with rt.db.tenant(ctx) as session:
        found = await rpc_service.get(session, ctx, id, rpc_id)
    return found
