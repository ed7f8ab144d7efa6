"""Server-side RPC to devices: record the call, deliver it through a live session (in this
process or another), wait for the reply, and keep the outcome for the UI.

A call goes `queued` -> `delivered` (a session took it) -> `successful` (the device replied)
or `timeout`; one that no session took is `offline`. Every transition is a conditional update,
so a reply, the deadline and a second process can race without a call ending twice.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from iiot.audit.service import record
from iiot.connectivity.errors import DeviceOffline, RpcTimeout
from iiot.connectivity.hub import hub
from iiot.connectivity.repository import NotifyRepository, RpcRepository, StaleRpcRepository
from iiot.connectivity.schemas import RpcIn, RpcList, RpcOut
from iiot.db.session import TenantSession
from iiot.devices import lookup as devices
from iiot.errors import Conflict, NotFound
from iiot.models.connectivity import DeviceRpc
from iiot.tenancy.context import TenantContext, system_context

if TYPE_CHECKING:
    from iiot.runtime import Runtime

# How long a call waits for some process to report that a session took it before the device
# counts as offline (only when no session of this process could take it).
DELIVERY_WAIT_SECONDS = 1.0


async def create(
    session: TenantSession, ctx: TenantContext, device_id: uuid.UUID, body: RpcIn
) -> DeviceRpc:
    if not await devices.exists(session, ctx, device_id):
        raise NotFound("device not found")
    now = datetime.now(UTC)
    row = await RpcRepository(session, ctx).add(
        DeviceRpc(
            device_id=device_id,
            method=body.method,
            params=body.params,
            oneway=body.oneway,
            status="queued",
            timeout_ms=body.timeout_ms,
            created_by=ctx.user_id,
            expires_at=now + timedelta(milliseconds=body.timeout_ms),
        )
    )
    await session.refresh(row)
    await record(
        session,
        ctx,
        "device.rpc",
        target_type="device",
        target_id=device_id,
        after={
            "rpc_id": row.id,
            "method": row.method,
            "oneway": row.oneway,
            "timeout_ms": row.timeout_ms,
        },
    )
    return row


async def _finish(rt: Runtime, ctx: TenantContext, rpc_id: int, status: str) -> DeviceRpc | None:
    async with rt.db.tenant(ctx) as session:
        repo = RpcRepository(session, ctx)
        ended = await repo.transition(
            rpc_id,
            from_statuses=("queued", "delivered"),
            to_status=status,
            at=datetime.now(UTC),
        )
        return ended if ended is not None else await repo.get(rpc_id)


async def call(rt: Runtime, ctx: TenantContext, device_id: uuid.UUID, body: RpcIn) -> RpcOut:
    """Send a call and, for a two-way call, wait for the reply. `DeviceOffline` (409) when no
    live session took it, `RpcTimeout` (504) when the reply did not come in time."""
    async with rt.db.tenant(ctx) as session:
        row = await create(session, ctx, device_id, body)
    rpc_id = row.id
    sessions = hub(rt)
    reply = None if body.oneway else sessions.expect_reply(ctx.tenant_id, rpc_id)
    deadline = asyncio.get_running_loop().time() + body.timeout_ms / 1000
    try:
        delivered = await sessions.deliver(
            ctx.tenant_id, device_id, rpc_id, min(DELIVERY_WAIT_SECONDS, body.timeout_ms / 1000)
        )
        if not delivered:
            raise DeviceOffline("no live session of this device can take the call", rpc_id=rpc_id)
        if reply is not None:
            remaining = max(deadline - asyncio.get_running_loop().time(), 0.0)
            try:
                await asyncio.wait_for(asyncio.shield(reply), remaining)
            except TimeoutError:
                ended = await _finish(rt, ctx, rpc_id, "timeout")
                if ended is None or ended.status != "successful":
                    raise RpcTimeout(
                        f"the device did not answer within {body.timeout_ms} ms", rpc_id=rpc_id
                    ) from None
                return RpcOut.model_validate(ended)
    finally:
        if reply is not None:
            sessions.forget_reply(ctx.tenant_id, rpc_id)
    async with rt.db.tenant(ctx) as session:
        final = await RpcRepository(session, ctx).get(rpc_id)
    assert final is not None
    return RpcOut.model_validate(final)


async def complete(
    session: TenantSession, ctx: TenantContext, device_id: uuid.UUID, rpc_id: int, response: Any
) -> None:
    """Store the device's reply to a delivered two-way call and wake its caller."""
    repo = RpcRepository(session, ctx)
    done = await repo.transition(
        rpc_id,
        from_statuses=("delivered",),
        to_status="successful",
        at=datetime.now(UTC),
        device_id=device_id,
        response=response,
        with_response=True,
    )
    if done is None:
        existing = await repo.get(rpc_id, device_id)
        if existing is None:
            raise NotFound("no such RPC request for this device")
        raise Conflict(f"RPC request {rpc_id} is already {existing.status}")
    await NotifyRepository(session).send({"k": "reply", "t": str(ctx.tenant_id), "id": rpc_id})


async def page(
    session: TenantSession, ctx: TenantContext, device_id: uuid.UUID, *, limit: int, offset: int
) -> RpcList:
    if not await devices.exists(session, ctx, device_id):
        raise NotFound("device not found")
    rows, total = await RpcRepository(session, ctx).page(device_id, limit=limit, offset=offset)
    rpc = [RpcOut.model_validate(r) for r in rows]
    return RpcList(rpc=rpc, total=total, limit=limit, offset=offset)


async def get(
    session: TenantSession, ctx: TenantContext, device_id: uuid.UUID, rpc_id: int
) -> RpcOut:
    row = await RpcRepository(session, ctx).get(rpc_id, device_id)
    if row is None:
        raise NotFound("RPC request not found")
    return RpcOut.model_validate(row)


# A call whose caller's process went away (crash, restart) is closed this long after its
# deadline; a live caller closes its own call at the deadline.
STALE_GRACE_SECONDS = 30.0
EXPIRY_INTERVAL_SECONDS = 60.0


async def expire_stale(rt: Runtime) -> int:
    """Job: mark two-way calls nobody waits for any more as `timeout`."""
    async with rt.db.system() as session:
        tenants = await StaleRpcRepository(session).tenants(STALE_GRACE_SECONDS)
    now = datetime.now(UTC)
    closed = 0
    for tenant_id in tenants:
        ctx = system_context(tenant_id)
        async with rt.db.tenant(ctx) as session:
            closed += await RpcRepository(session, ctx).expire_stale(
                now - timedelta(seconds=STALE_GRACE_SECONDS), now
            )
    return closed
