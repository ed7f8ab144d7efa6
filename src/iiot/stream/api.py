"""`GET /api/v1/stream`: Server-Sent Events of the active tenant (telemetry and alerts)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from iiot.callers.access import TokenTenant
from iiot.callers.resolver import bearer_token
from iiot.errors import (
    Forbidden,
    NotAcceptable,
    NotFound,
    TenantSuspended,
    Unauthorized,
    ValidationFailed,
    problem_responses,
)
from iiot.http.routing import API_PREFIX, IIoTRoute
from iiot.identity.credentials import API_KEY_PREFIX
from iiot.runtime import get_runtime
from iiot.stream.hub import Subscriber, hub
from iiot.stream.repository import StreamDeviceRepository
from iiot.tenancy.context import TenantContext
from iiot.tenancy.principals import UserPrincipal
from iiot.tenancy.roles import Role

router = APIRouter(prefix=API_PREFIX, tags=["stream"], route_class=IIoTRoute)

Reader = Annotated[TenantContext, Depends(TokenTenant(Role.viewer))]
MAX_DEVICES = 50
HEARTBEAT_SECONDS = 15.0


def _device_ids(raw: str | None) -> set[uuid.UUID]:
    if not raw:
        return set()
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if len(parts) > MAX_DEVICES:
        raise ValidationFailed(f"at most {MAX_DEVICES} devices per stream")
    try:
        return {uuid.UUID(p) for p in parts}
    except ValueError as exc:
        raise ValidationFailed("devices must be comma-separated device ids") from exc


def _expiry(request: Request) -> datetime | None:
    """When the presented access token expires (the stream ends then); None for an API key."""
    token = bearer_token(request)
    if token is None or token.startswith(API_KEY_PREFIX):
        return None
    return get_runtime(request).tokens.decode_access(token).expires_at


async def _events(
    request: Request, sub: Subscriber, until: datetime | None
) -> AsyncIterator[bytes]:
    rt = get_runtime(request)
    try:
        yield b"retry: 3000\nevent: ready\ndata: {}\n\n"
        while True:
            timeout = HEARTBEAT_SECONDS
            if until is not None:
                left = (until - datetime.now(UTC)).total_seconds()
                if left <= 0:
                    yield b"event: expired\ndata: {}\n\n"
                    return
                timeout = min(timeout, left)
            try:
                event, data = await asyncio.wait_for(sub.queue.get(), timeout)
            except TimeoutError:
                if await request.is_disconnected():
                    return
                yield b": keep-alive\n\n"
                continue
            yield b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"
            if event in ("lagged", "revoked"):
                return
    finally:
        hub(rt).unsubscribe(sub)


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"},
        **problem_responses(
            Unauthorized, Forbidden, TenantSuspended, NotFound, NotAcceptable, ValidationFailed
        ),
    },
)
async def stream(
    request: Request,
    ctx: Reader,
    devices: Annotated[
        str | None,
        Query(max_length=MAX_DEVICES * 37, description="Comma-separated device ids to watch"),
    ] = None,
) -> StreamingResponse:
    """Live events of the active tenant as Server-Sent Events.

    `telemetry` events carry new points of the watched devices (`{"device_id", "points":
    [[key, ts, value], ...]}`); `alert` events announce an alert opened or changed
    (`{"id", "state", "event", "severity"}`). A device of another tenant is 404. The stream
    ends with an `expired` event when the access token expires (reconnect with a fresh one),
    with `lagged` when the client reads too slowly, and with `revoked` as soon as the caller's
    membership is removed or their account disabled.
    """
    rt = get_runtime(request)
    wanted = _device_ids(devices)
    async with rt.db.tenant(ctx) as session:
        found = await StreamDeviceRepository(session, ctx).existing(wanted)
    if found != wanted:
        raise NotFound("device not found")
    if "text/event-stream" not in request.headers.get("accept", ""):
        raise NotAcceptable("this is a Server-Sent Events stream: send Accept: text/event-stream")
    until = _expiry(request)
    person = ctx.principal.user_id if isinstance(ctx.principal, UserPrincipal) else None
    sub = await hub(rt).subscribe(ctx.tenant_id, frozenset(found), person)
    return StreamingResponse(
        _events(request, sub, until),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
