"""Online/offline bookkeeping of the MQTT sessions, written in batches.

A broker restart brings every device back at once: one transaction per connection and one
per disconnection would queue thousands of small writes behind each other and hold pool
connections that authentication and telemetry need. Instead, what changed since the last
write is written together, in one transaction per tenant, by one writer at a time; the
latest change of a device wins (a device that connected and left again is written offline).
Each connection still waits until its own change is committed, so that what it does next
(a subscription, a message) comes after it, as before.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from typing import TYPE_CHECKING

from iiot.connectivity import service
from iiot.connectivity.identity import DeviceIdentity

if TYPE_CHECKING:
    from iiot.runtime import Runtime

log = logging.getLogger(__name__)

# Devices per statement: bounded, however many connected at once.
BATCH = 500


class Bookkeeper:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._pending: dict[uuid.UUID, tuple[DeviceIdentity, bool]] = {}
        self._written: asyncio.Future[None] | None = None  # done once `_pending` is written
        self._writer: asyncio.Task[None] | None = None

    async def connected(self, device: DeviceIdentity) -> None:
        await self._record(device, True)

    async def disconnected(self, device: DeviceIdentity) -> None:
        await self._record(device, False)

    async def _record(self, device: DeviceIdentity, online: bool) -> None:
        """Queue the change and return once it is written (or its write failed, logged)."""
        self._pending.pop(device.device_id, None)  # re-inserted last: the order of arrival
        self._pending[device.device_id] = (device, online)
        if self._written is None:
            self._written = asyncio.get_running_loop().create_future()
        written = self._written
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_pending())
        await asyncio.shield(written)

    async def _write_pending(self) -> None:
        while self._pending:
            changes, self._pending = list(self._pending.values()), {}
            written, self._written = self._written, None
            try:
                await self._write(changes)
            finally:
                if written is not None and not written.done():
                    written.set_result(None)

    async def _write(self, changes: list[tuple[DeviceIdentity, bool]]) -> None:
        by_tenant: defaultdict[uuid.UUID, list[tuple[DeviceIdentity, bool]]] = defaultdict(list)
        for change in changes:
            by_tenant[change[0].tenant_id].append(change)
        for tenant_id, of_tenant in by_tenant.items():
            for start in range(0, len(of_tenant), BATCH):
                try:
                    await service.sessions_changed(self.rt, of_tenant[start : start + BATCH])
                except Exception:
                    log.warning(
                        "MQTT: online/offline of %d devices of tenant %s not written",
                        len(of_tenant[start : start + BATCH]),
                        tenant_id,
                        exc_info=True,
                    )
