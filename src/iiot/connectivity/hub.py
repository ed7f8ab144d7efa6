"""The live-session hub: which devices have a session in this process, and delivery to them.

A transport (an MQTT connection, an HTTP RPC long-poll) `attach`es a `DeviceSession` for a
device while it can receive; a gateway's session is attached for each of its connected
sub-devices as well. There is one hub per process; processes talk through PostgreSQL
LISTEN/NOTIFY on `iiot_device_api` (JSON messages `{"k": kind, "t": tenant, ...}`):

- `attr`   shared attributes of device `d` changed (`u`: keys, null = all) or were deleted
           (`x`); a process with a session of `d` reads the values and pushes them.
- `rpc`    call `id` to device `d` waits for delivery; a process with a session claims it
           (queued -> delivered, so exactly one delivers), pushes it and answers `ack`.
- `ack`    call `id` was delivered (wakes the waiting caller at once).
- `reply`  call `id` has the device's reply committed (the waiting caller reads it).

The hub also hears the device-credential channel (token rotated or revoked, device disabled
or deleted, tenant suspended or deleted) and closes every session whose credential no longer
holds, so it ends within a moment of the change. Both channels arrive on the process's one
LISTEN connection (`iiot.db.listen`); after it was lost, every session is re-checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import orjson

from iiot.connectivity.identity import DeviceIdentity
from iiot.connectivity.repository import (
    DEVICE_API_CHANNEL,
    AttributeRepository,
    NotifyRepository,
    RpcRepository,
)
from iiot.db.listen import Subscription, listener
from iiot.devices.lookup import CREDENTIALS_CHANNEL, credential_notice, device_state, token_holder
from iiot.devices.presence import presence
from iiot.tenancy.context import system_context

if TYPE_CHECKING:
    from iiot.runtime import Runtime

log = logging.getLogger(__name__)

# How often devices with a live session here are recorded as heard from (well within
# `iiot.devices.presence.OFFLINE_AFTER`).
HEARTBEAT_SECONDS = 60.0


@runtime_checkable
class DeviceSession(Protocol):
    """A live connection that can push to one device (or to a gateway's sub-device)."""

    device_id: uuid.UUID
    tenant_id: uuid.UUID

    async def push_attributes(self, shared: dict[str, Any], deleted: list[str]) -> None:
        """Shared attributes changed (`shared`: new values) or were deleted."""

    async def push_rpc_request(self, request_id: int, method: str, params: Any) -> bool:
        """Deliver a server-side RPC; False when the device does not take RPC (not
        subscribed, or busy)."""

    async def close(self, reason: str) -> None:
        """End the session: token revoked, tenant suspended, device deleted or disabled."""


@dataclass(slots=True)
class _Attached:
    session: DeviceSession
    identity: DeviceIdentity | None


class DeviceSessionHub:
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._by_device: dict[uuid.UUID, list[_Attached]] = {}
        self._rpc_waiters: dict[tuple[uuid.UUID, int], asyncio.Future[Any]] = {}
        self._acks: dict[tuple[uuid.UUID, int], asyncio.Event] = {}
        self._subscription = Subscription(
            {
                DEVICE_API_CHANNEL: self._on_device_api,
                CREDENTIALS_CHANNEL: self._on_credentials,
            },
            reset=self._reset,
            name="device session hub",
        )
        self._heartbeat: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        # Gateway sub-devices resolved in this process: (gateway id, name) -> identity.
        self.subdevices: dict[tuple[uuid.UUID, str], DeviceIdentity] = {}

    # -- sessions -----------------------------------------------------------------------

    def attach(self, session: DeviceSession, identity: DeviceIdentity | None = None) -> None:
        """Register a live session. Pass the `identity` it authenticated with (for a
        sub-device, the identity `service.gateway_device` returned) so that the hub can close
        it when that credential is revoked."""
        self.start()
        entries = self._by_device.setdefault(session.device_id, [])
        if not any(e.session is session for e in entries):
            entries.append(_Attached(session, identity))

    def detach(self, session: DeviceSession) -> None:
        entries = self._by_device.get(session.device_id)
        if not entries:
            return
        entries[:] = [e for e in entries if e.session is not session]
        if not entries:
            del self._by_device[session.device_id]

    def sessions(self, device_id: uuid.UUID) -> list[DeviceSession]:
        return [e.session for e in self._by_device.get(device_id, ())]

    def session_count(self) -> int:
        return sum(len(v) for v in self._by_device.values())

    def _tenant_sessions(self, tenant_id: uuid.UUID, device_id: uuid.UUID) -> list[DeviceSession]:
        return [s for s in self.sessions(device_id) if s.tenant_id == tenant_id]

    # -- listener -----------------------------------------------------------------------

    @property
    def listening(self) -> bool:
        return listener(self._rt).hears(self._subscription)

    def start(self) -> None:
        listener(self._rt).add(self._subscription)
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.create_task(self._beat(), name="device-session-heartbeat")

    async def _beat(self) -> None:
        """Devices with a live session here are heard from (online) while it lasts."""
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            self.mark_seen()

    def mark_seen(self) -> None:
        now = datetime.now(UTC)
        seen = presence(self._rt)
        for device_id, entries in list(self._by_device.items()):
            if entries:
                seen.seen(entries[0].session.tenant_id, device_id, now)

    async def wait_listening(self, timeout: float = 5.0) -> None:
        self.start()
        await listener(self._rt).ready(self._subscription, timeout)

    async def stop(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        await listener(self._rt).remove(self._subscription)
        self.subdevices.clear()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        self._handlers.clear()
        for entries in list(self._by_device.values()):
            for entry in list(entries):
                with contextlib.suppress(Exception):
                    await entry.session.close("server shutting down")
        self._by_device.clear()

    def _reset(self) -> None:
        """The listener (re)connected or lost its connection: notices may have been missed."""
        self.subdevices.clear()
        if listener(self._rt).connected and self._by_device:
            # Changes made while no listener was connected: re-check every session.
            self._spawn(self._recheck(lambda _entry: True))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._handlers.add(task)
        task.add_done_callback(self._handler_done)

    def _handler_done(self, task: asyncio.Task[None]) -> None:
        self._handlers.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("device session hub handler failed", exc_info=task.exception())

    def _on_credentials(self, payload: str) -> None:
        # A tenant's status changed (the token cache's notice too), or a device's credentials.
        notice = credential_notice(payload)
        if notice is None:
            return
        kind, target = notice
        if kind == "tenant":
            self._spawn(self._recheck(lambda e: e.session.tenant_id == target))
            return
        self._forget_subdevices(target)
        self._spawn(self._recheck(lambda e: _concerns(e, target)))

    def _on_device_api(self, payload: str) -> None:
        try:
            message = orjson.loads(payload)
            kind = message["k"]
            tenant_id = uuid.UUID(message["t"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("ignoring a malformed device API notification")
            return
        if kind == "attr":
            device_id = uuid.UUID(message["d"])
            if self._tenant_sessions(tenant_id, device_id):
                self._spawn(
                    self._push_attributes(
                        tenant_id, device_id, message.get("u"), list(message.get("x") or [])
                    )
                )
        elif kind == "rpc":
            device_id = uuid.UUID(message["d"])
            if self._tenant_sessions(tenant_id, device_id):
                self._spawn(self._deliver_remote(tenant_id, device_id, int(message["id"])))
        elif kind == "ack":
            event = self._acks.get((tenant_id, int(message["id"])))
            if event is not None:
                event.set()
        elif kind == "reply":
            waiter = self._rpc_waiters.get((tenant_id, int(message["id"])))
            if waiter is not None and not waiter.done():
                self._spawn(self._read_reply(tenant_id, int(message["id"])))

    # -- attributes ---------------------------------------------------------------------

    async def _push_attributes(
        self,
        tenant_id: uuid.UUID,
        device_id: uuid.UUID,
        keys: list[str] | None,
        deleted: list[str],
    ) -> None:
        shared: dict[str, Any] = {}
        if keys is None or keys:
            ctx = system_context(tenant_id)
            async with self._rt.db.tenant(ctx) as session:
                rows = await AttributeRepository(session, ctx).read(device_id, "shared", keys)
            shared = {row.key: row.value for row in rows}
        if not shared and not deleted:
            return
        for target in self._tenant_sessions(tenant_id, device_id):
            try:
                await target.push_attributes(shared, deleted)
            except Exception:
                log.warning("pushing attributes to a device session failed", exc_info=True)

    # -- RPC ----------------------------------------------------------------------------

    def expect_reply(self, tenant_id: uuid.UUID, rpc_id: int) -> asyncio.Future[Any]:
        """A future resolved with the device's reply to call `rpc_id` (from any process)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._rpc_waiters[(tenant_id, rpc_id)] = future
        return future

    def forget_reply(self, tenant_id: uuid.UUID, rpc_id: int) -> None:
        self._rpc_waiters.pop((tenant_id, rpc_id), None)

    def reply_arrived(self, tenant_id: uuid.UUID, rpc_id: int, response: Any) -> None:
        """The reply was committed in this process: wake a caller waiting here."""
        waiter = self._rpc_waiters.get((tenant_id, rpc_id))
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    async def _read_reply(self, tenant_id: uuid.UUID, rpc_id: int) -> None:
        ctx = system_context(tenant_id)
        async with self._rt.db.tenant(ctx) as session:
            row = await RpcRepository(session, ctx).get(rpc_id)
        if row is not None and row.status == "successful":
            self.reply_arrived(tenant_id, rpc_id, row.response)

    async def deliver_here(self, tenant_id: uuid.UUID, device_id: uuid.UUID, rpc_id: int) -> bool:
        """Deliver call `rpc_id` through a session of this process; False if none took it."""
        targets = self._tenant_sessions(tenant_id, device_id)
        if not targets:
            return False
        ctx = system_context(tenant_id)
        now = datetime.now(UTC)
        async with self._rt.db.tenant(ctx) as session:
            row = await RpcRepository(session, ctx).transition(
                rpc_id,
                from_statuses=("queued",),
                to_status="delivered",
                at=now,
                device_id=device_id,
            )
        if row is None:
            return False  # another process delivered it, or its deadline passed
        for target in targets:
            try:
                if await target.push_rpc_request(row.id, row.method, row.params):
                    return True
            except Exception:
                log.warning("pushing an RPC to a device session failed", exc_info=True)
        async with self._rt.db.tenant(ctx) as session:
            await RpcRepository(session, ctx).transition(
                rpc_id, from_statuses=("delivered",), to_status="queued", at=now
            )
        return False

    async def _deliver_remote(
        self, tenant_id: uuid.UUID, device_id: uuid.UUID, rpc_id: int
    ) -> None:
        if await self.deliver_here(tenant_id, device_id, rpc_id):
            async with self._rt.db.system() as session:
                await NotifyRepository(session).send(
                    {"k": "ack", "t": str(tenant_id), "id": rpc_id}
                )

    async def deliver(
        self, tenant_id: uuid.UUID, device_id: uuid.UUID, rpc_id: int, wait_seconds: float
    ) -> bool:
        """Deliver call `rpc_id` here or through another process; False (and the call marked
        `offline`) when no session anywhere took it within `wait_seconds`."""
        if await self.deliver_here(tenant_id, device_id, rpc_id):
            return True
        key = (tenant_id, rpc_id)
        acked = self._acks[key] = asyncio.Event()
        try:
            async with self._rt.db.system() as session:
                await NotifyRepository(session).send(
                    {"k": "rpc", "t": str(tenant_id), "d": str(device_id), "id": rpc_id}
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(acked.wait(), wait_seconds)
        finally:
            self._acks.pop(key, None)
        if acked.is_set():
            return True
        ctx = system_context(tenant_id)
        async with self._rt.db.tenant(ctx) as session:
            gave_up = await RpcRepository(session, ctx).transition(
                rpc_id, from_statuses=("queued",), to_status="offline", at=datetime.now(UTC)
            )
        # Not queued any more: a process claimed it just now (or the device already replied).
        return gave_up is None

    # -- revocation ---------------------------------------------------------------------

    def _forget_subdevices(self, device_id: uuid.UUID) -> None:
        stale = [
            key
            for key, ident in self.subdevices.items()
            if ident.device_id == device_id or ident.gateway_id == device_id
        ]
        for key in stale:
            self.subdevices.pop(key, None)

    async def _recheck(self, concerns: Any) -> None:
        entries = [e for items in list(self._by_device.values()) for e in items if concerns(e)]
        for entry in entries:
            reason = await self._refusal(entry)
            if reason is not None:
                self.detach(entry.session)
                try:
                    await entry.session.close(reason)
                except Exception:
                    log.warning("closing a device session failed", exc_info=True)

    async def _refusal(self, entry: _Attached) -> str | None:
        """Why the session may no longer speak for its device, or None if it still may."""
        session = entry.session
        identity = entry.identity
        ctx = system_context(session.tenant_id)
        if identity is not None and identity.token_digest is not None:
            # The token's owner and its gateway flag (read under the tenant's row-level
            # security; None when the row is not there), in one statement.
            owner = await token_holder(self._rt.db, identity.token_digest)
            speaker = identity.gateway_id or identity.device_id
            if owner is None or owner.device_id != speaker:
                return "token revoked"
            if owner.tenant_status == "suspended":
                return "tenant suspended"
            if owner.device_status == "disabled":
                return "device disabled"
            if (identity.gateway_id is not None or identity.is_gateway) and not owner.is_gateway:
                return "no longer a gateway"
            if identity.gateway_id is None:
                return None
        async with self._rt.db.tenant(ctx) as db:
            device = await device_state(db, ctx, session.device_id)
        if device is None:
            return "device deleted"
        if device.status == "disabled":
            return "device disabled"
        return None


def _concerns(entry: _Attached, device_id: uuid.UUID) -> bool:
    if entry.session.device_id == device_id:
        return True
    return entry.identity is not None and entry.identity.gateway_id == device_id


def hub(rt: Runtime) -> DeviceSessionHub:
    """This process's hub."""
    return rt.state.get(DeviceSessionHub)


async def start_hub(rt: Runtime) -> None:
    """Start listening at start-up, so that pushes reach the first sessions. A listener that
    cannot connect yet keeps retrying in the background; start-up goes on."""
    try:
        await hub(rt).wait_listening()
    except TimeoutError:
        log.warning("device session hub not listening yet; it keeps trying")


async def stop_hub(rt: Runtime) -> None:
    found = rt.state.peek(DeviceSessionHub)
    if found is not None:
        await found.stop()
