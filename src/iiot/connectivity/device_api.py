"""The ThingsBoard HTTP device API: `/api/v1/{token}/...`, the device token in the path.

Same JSON forms as ThingsBoard (and as MQTT): telemetry, client attributes, attribute
requests, the RPC long-poll and its reply, client-side RPC, and the shared-attribute
long-poll. Mounted after every other API router so that `/{token}/...` never shadows a route
of the API (tests/connectivity/test_route_order.py checks it).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.responses import JSONResponse
from starlette.responses import Response

from iiot.connectivity import service, tb_json
from iiot.connectivity.access import MAX_TOKEN_IN_PATH, DeviceTokenInPath
from iiot.connectivity.errors import PollTimeout
from iiot.connectivity.hub import hub
from iiot.connectivity.identity import DeviceIdentity
from iiot.connectivity.longpoll import AttributeUpdate, LongPollSession, RpcRequest
from iiot.devices.presence import presence
from iiot.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    QuotaExceeded,
    TenantSuspended,
    Unauthorized,
    ValidationFailed,
    problem_responses,
)
from iiot.http.fast_routes import FastRoute
from iiot.http.routing import API_PREFIX, IIoTRoute
from iiot.runtime import get_runtime
from iiot.telemetry.api import acknowledgement
from iiot.telemetry.schemas import MAX_BODY_BYTES, IngestAccepted

router = APIRouter(
    prefix=API_PREFIX, tags=["device API (ThingsBoard compatible)"], route_class=IIoTRoute
)

TOKEN_IN_PATH = DeviceTokenInPath()
Device = Annotated[DeviceIdentity, Depends(TOKEN_IN_PATH)]

DEFAULT_POLL_MS = 30_000
MAX_POLL_MS = 60_000
_AUTH_ERRORS = (Unauthorized, Forbidden, TenantSuspended)
_WRITE_ERRORS = (*_AUTH_ERRORS, BadRequest, PayloadTooLarge, ValidationFailed)
_JSON_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {}}},
    }
}


async def read_body(request: Request) -> bytes:
    """The body, refused with 413 as soon as it exceeds the ingest limit."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the body is limited to {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"the body is limited to {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        raise BadRequest("empty body: expected JSON")
    return body


@router.post(
    "/{token}/telemetry",
    responses=problem_responses(*_WRITE_ERRORS, QuotaExceeded, NotFound),
    openapi_extra=_JSON_BODY,
)
async def post_telemetry(request: Request, device: Device) -> IngestAccepted:
    """Telemetry in ThingsBoard's forms: `{"k": v}`, `{"ts": ms, "values": {…}}`, or an
    array of those; numeric strings are stored as numbers."""
    points = tb_json.parse_telemetry(await read_body(request), datetime.now(UTC))
    outcome = await service.ingest(get_runtime(request), device, points)
    return IngestAccepted(points=outcome.accepted, duplicates=outcome.duplicates)


async def _post_telemetry_lean(request: Request, device: DeviceIdentity) -> Response:
    """`post_telemetry` without FastAPI's routing and dependency solving: the same work, the
    same 200 answer."""
    return acknowledgement(await post_telemetry(request, device), status.HTTP_200_OK)


def _token_segment(text: str) -> str:
    """The `{token}` segment as the declared route's `Path(max_length=...)` accepts it."""
    if len(text) > MAX_TOKEN_IN_PATH:
        raise ValueError("token too long")  # the declared route answers the 422
    return text


# A device's telemetry through the ThingsBoard path (its single-message hot path) skips the
# router, like `POST /api/v1/telemetry` does (`iiot.http.fast_routes`).
FAST_TB_TELEMETRY = FastRoute(
    method="POST",
    path="/{token}/telemetry",
    access=TOKEN_IN_PATH,
    endpoint=_post_telemetry_lean,
    convert=_token_segment,
)


@router.post(
    "/{token}/attributes",
    responses=problem_responses(*_WRITE_ERRORS, NotFound),
    openapi_extra=_JSON_BODY,
)
async def post_attributes(request: Request, device: Device) -> dict[str, int]:
    """Client attributes of the device: `{"k": v}` (any JSON values)."""
    values = tb_json.parse_attributes(await read_body(request))
    await service.save_client_attributes(get_runtime(request), device, values)
    return {"attributes": len(values)}


@router.get("/{token}/attributes", responses=problem_responses(*_AUTH_ERRORS))
async def get_attributes(
    request: Request,
    device: Device,
    client_keys: Annotated[str | None, Query(alias="clientKeys", max_length=65_536)] = None,
    shared_keys: Annotated[str | None, Query(alias="sharedKeys", max_length=65_536)] = None,
) -> dict[str, dict[str, Any]]:
    """`{"client": {…}, "shared": {…}}`: the keys asked, or every client and shared attribute
    when no keys are named."""
    client, shared = tb_json.attribute_request_keys(client_keys, shared_keys)
    return await service.read_attributes(get_runtime(request), device, client, shared)


PollTimeoutMs = Annotated[
    int, Query(ge=0, le=MAX_POLL_MS, description="How long to wait, in milliseconds")
]


async def _poll(
    request: Request, device: DeviceIdentity, mode: str, timeout_ms: int
) -> RpcRequest | AttributeUpdate | None:
    rt = get_runtime(request)
    sessions = hub(rt)
    # A device waiting for requests is heard from (online) while it waits.
    presence(rt).seen(device.tenant_id, device.device_id, datetime.now(UTC))
    poll = LongPollSession(device, "rpc" if mode == "rpc" else "attributes")
    sessions.attach(poll, device)
    try:
        return await poll.wait(timeout_ms / 1000)
    finally:
        sessions.detach(poll)


@router.get("/{token}/rpc", responses=problem_responses(*_AUTH_ERRORS, PollTimeout))
async def poll_rpc(
    request: Request, device: Device, timeout: PollTimeoutMs = DEFAULT_POLL_MS
) -> dict[str, Any]:
    """Wait for a server-side RPC request: `{"id", "method", "params"}`; 408 when none came
    within `timeout` ms. Answer it with `POST /api/v1/{token}/rpc/{id}`."""
    got = await _poll(request, device, "rpc", timeout or DEFAULT_POLL_MS)
    if not isinstance(got, RpcRequest):
        raise PollTimeout("no RPC request within the timeout")
    return {"id": got.id, "method": got.method, "params": got.params}


@router.post(
    "/{token}/rpc/{request_id}",
    responses=problem_responses(*_WRITE_ERRORS, NotFound, Conflict),
    openapi_extra=_JSON_BODY,
)
async def reply_rpc(
    request: Request,
    device: Device,
    request_id: Annotated[int, Path(ge=1, le=2**62, description="The request's id")],
) -> dict[str, str]:
    """The device's reply (any JSON) to server-side RPC request `request_id`."""
    payload = tb_json.decode_json(await read_body(request))
    await service.rpc_reply(get_runtime(request), device, request_id, payload)
    return {"status": "ok"}


@router.post(
    "/{token}/rpc",
    responses=problem_responses(*_WRITE_ERRORS, NotFound),
    openapi_extra=_JSON_BODY,
)
async def client_rpc(request: Request, device: Device) -> JSONResponse:
    """A call from the device to the server: `{"method": "getCurrentTime", "params": {}}`;
    `getSessionLimits` and `getCurrentTime` are answered."""
    document = tb_json.decode_json(await read_body(request))
    if not isinstance(document, dict) or not isinstance(document.get("method"), str):
        raise ValidationFailed('expected {"method": "...", "params": ...}')
    result = await service.client_rpc(
        get_runtime(request), device, document["method"], document.get("params")
    )
    return JSONResponse(result)


@router.get("/{token}/attributes/updates", responses=problem_responses(*_AUTH_ERRORS, PollTimeout))
async def poll_attribute_updates(
    request: Request, device: Device, timeout: PollTimeoutMs = DEFAULT_POLL_MS
) -> dict[str, Any]:
    """Wait for a change of shared attributes: `{"k": v, …, "deleted": [...]}`; 408 when
    none came within `timeout` ms."""
    got = await _poll(request, device, "attributes", timeout or DEFAULT_POLL_MS)
    if not isinstance(got, AttributeUpdate):
        raise PollTimeout("no attribute update within the timeout")
    out: dict[str, Any] = dict(got.shared)
    if got.deleted:
        out["deleted"] = list(got.deleted)
    return out
