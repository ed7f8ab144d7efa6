"""Device routes: CRUD, latest values, credential rotation."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status

from iiot.callers.access import TokenTenant
from iiot.devices import service
from iiot.devices.presence import presence
from iiot.devices.repository import DeviceFilters
from iiot.devices.schemas import (
    CredentialOut,
    DeviceCreated,
    DeviceIn,
    DeviceList,
    DeviceOut,
    DevicePatch,
)
from iiot.errors import (
    Forbidden,
    NotFound,
    QuotaExceeded,
    TenantSuspended,
    Unauthorized,
    ValidationFailed,
    problem_responses,
)
from iiot.http.routing import API_PREFIX, IIoTRoute
from iiot.runtime import get_runtime
from iiot.tenancy.context import TenantContext
from iiot.tenancy.roles import Role

router = APIRouter(prefix=f"{API_PREFIX}/devices", tags=["devices"], route_class=IIoTRoute)

Reader = Annotated[TenantContext, Depends(TokenTenant(Role.viewer))]
Developer = Annotated[TenantContext, Depends(TokenTenant(Role.developer))]
DeviceId = Annotated[uuid.UUID, Path(description="Device id")]

_READ_ERRORS = (Unauthorized, Forbidden, TenantSuspended, NotFound, ValidationFailed)
_WRITE_ERRORS = (*_READ_ERRORS, QuotaExceeded)


@router.get("", responses=problem_responses(*_READ_ERRORS))
async def list_devices(
    request: Request,
    ctx: Reader,
    status_: Annotated[
        Literal["online", "offline", "disabled"] | None, Query(alias="status")
    ] = None,
    area: Annotated[str | None, Query(max_length=100)] = None,
    type_: Annotated[str | None, Query(alias="type", max_length=64)] = None,
    search: Annotated[
        str | None, Query(max_length=100, description="Part of the name or location")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> DeviceList:
    """List the tenant's devices, filtered by status, area, type and a search text."""
    rt = get_runtime(request)
    filters = DeviceFilters(status=status_, area=area, type=type_, search=search)
    async with rt.db.tenant(ctx) as session:
        result = await service.list_devices(
            session, ctx, filters, limit=limit, offset=offset, presence=presence(rt)
        )
    return result


@router.post("", status_code=status.HTTP_201_CREATED, responses=problem_responses(*_WRITE_ERRORS))
async def create_device(request: Request, ctx: Developer, body: DeviceIn) -> DeviceCreated:
    """Register a device; the response carries its token, shown only this once."""
    rt = get_runtime(request)
    async with rt.db.tenant(ctx) as session:
        created = await service.create_device(session, ctx, body, presence=presence(rt))
    return created


@router.put("/{id}", responses=problem_responses(*_READ_ERRORS))
async def replace_device(
    request: Request, ctx: Developer, id: DeviceId, body: DeviceIn
) -> DeviceOut:
    """Replace a device's description (fields left out are reset)."""
    rt = get_runtime(request)
    async with rt.db.tenant(ctx) as session:
        updated = await service.update_device(session, ctx, id, body, presence=presence(rt))
    return updated


@router.patch("/{id}", responses=problem_responses(*_READ_ERRORS))
async def patch_device(
    request: Request, ctx: Developer, id: DeviceId, body: DevicePatch
) -> DeviceOut:
    """Change some of a device's fields; `status: disabled` stops its ingest."""
    rt = get_runtime(request)
    async with rt.db.tenant(ctx) as session:
        updated = await service.update_device(session, ctx, id, body, presence=presence(rt))
    return updated


@router.delete(
    "/{id}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(*_READ_ERRORS)
)
async def delete_device(request: Request, ctx: Developer, id: DeviceId) -> Response:
    """Delete a device with its credentials and telemetry."""
    rt = get_runtime(request)
    async with rt.db.tenant(ctx) as session:
        await service.delete_device(session, ctx, id, presence=presence(rt))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{id}/credentials",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(*_READ_ERRORS),
)
async def rotate_credentials(request: Request, ctx: Developer, id: DeviceId) -> CredentialOut:
    """Issue a new device token (shown only this once) and revoke the previous one."""
    rt = get_runtime(request)
    async with rt.db.tenant(ctx) as session:
        credential = await service.rotate_credentials(session, ctx, id)
    return credential
