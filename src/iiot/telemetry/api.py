"""Telemetry ingest route (queries live in `query_api`)."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Request, status
from starlette.responses import Response

from iiot.devices.access import DeviceOrMember, presented_device_token
from iiot.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    QuotaExceeded,
    RateLimited,
    TenantSuspended,
    Unauthorized,
    ValidationFailed,
    problem_responses,
)
from iiot.http.fast_routes import FastRoute
from iiot.http.routing import API_PREFIX, IIoTRoute
from iiot.runtime import get_runtime
from iiot.telemetry import ingest
from iiot.telemetry.schemas import MAX_BODY_BYTES, IngestAccepted, ingest_body_schema
from iiot.tenancy.context import TenantContext
from iiot.tenancy.roles import Role

router = APIRouter(prefix=API_PREFIX, tags=["telemetry"], route_class=IIoTRoute)

WRITER = DeviceOrMember(Role.operator, api_key_scope="telemetry:write")
Writer = Annotated[TenantContext, Depends(WRITER)]


async def _read_body(request: Request) -> bytes:
    """The body, refused with 413 as soon as it exceeds the limit."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError as exc:
            raise BadRequest("invalid Content-Length") from exc
        if size > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"the body is limited to {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"the body is limited to {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/telemetry",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(
        BadRequest,
        Unauthorized,
        Forbidden,
        TenantSuspended,
        NotFound,
        PayloadTooLarge,
        ValidationFailed,
        QuotaExceeded,
        RateLimited,
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ingest_body_schema()}},
        }
    },
)
async def ingest_telemetry(request: Request, ctx: Writer) -> IngestAccepted:
    """Store telemetry points from a device token, or from an operator for a tenant device."""
    rt = get_runtime(request)
    body = await _read_body(request)
    token_digest = getattr(request.state, "device_token_digest", None)
    prepared = await ingest.prepare(rt, ctx, body, token_digest)
    await ingest.admit(rt, ctx, prepared)
    # The hot path owns its transaction (see TelemetryWriter): committed when this returns.
    accepted = await ingest.write(rt, ctx, prepared)
    await ingest.after_commit(rt, ctx, prepared, accepted)
    return accepted


def acknowledgement(accepted: IngestAccepted, status_code: int) -> Response:
    """An ingest's answer as a lean route sends it: the declared route's `IngestAccepted`
    body, rendered without the response model."""
    return Response(
        orjson.dumps({"points": accepted.points, "duplicates": accepted.duplicates}),
        status_code=status_code,
        media_type="application/json",
    )


async def _ingest_lean(request: Request, ctx: TenantContext) -> Response:
    """`ingest_telemetry` without FastAPI's routing and dependency solving: the same work,
    the same 201 answer."""
    return acknowledgement(await ingest_telemetry(request, ctx), status.HTTP_201_CREATED)


def _from_a_device(request: Request) -> bool:
    return presented_device_token(request) is not None


# Devices' own requests (the single-point hot path) skip the router; members and API keys go
# through the declared route above.
FAST_INGEST = FastRoute(
    method="POST",
    path="/telemetry",
    access=WRITER,
    endpoint=_ingest_lean,
    takes=_from_a_device,
)
