"""The device detail route: a device with the newest value of each of its telemetry keys.

It sits with telemetry, which builds on the devices package, rather than with the device
routes of `iiot.devices.api`: the devices package does not read telemetry."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from iiot.callers.access import TokenTenant
from iiot.devices.presence import presence
from iiot.devices.schemas import DeviceDetail
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
from iiot.telemetry import query_service
from iiot.tenancy.context import TenantContext
from iiot.tenancy.roles import Role

router = APIRouter(prefix=f"{API_PREFIX}/devices", tags=["devices"], route_class=IIoTRoute)

Reader = Annotated[TenantContext, Depends(TokenTenant(Role.viewer))]
DeviceId = Annotated[uuid.UUID, Path(description="Device id")]


@router.get(
    "/{id}",
    responses=problem_responses(
        Unauthorized, Forbidden, TenantSuspended, NotFound, ValidationFailed
    ),
)
async def get_device(request: Request, ctx: Reader, id: DeviceId) -> DeviceDetail:
    """One device with the newest value of each of its telemetry keys."""
    rt = get_runtime(request)
    async with rt.db.tenant(ctx) as session:
        detail = await query_service.device_detail(session, ctx, id, presence=presence(rt))
    return detail
