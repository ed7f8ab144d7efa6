"""When each device was last heard from, kept in memory and flushed to `devices` periodically.

Ingest records a device in a dict (no database write per point); the `device-presence` job
writes the newest times per tenant in one statement. A device is `online` while its
`last_seen` is within `OFFLINE_AFTER`; reads merge the not-yet-flushed in-memory value.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from iiot.devices.repository import DeviceRepository
from iiot.tenancy.context import system_context

if TYPE_CHECKING:
    from iiot.runtime import Runtime

log = logging.getLogger(__name__)

OFFLINE_AFTER = timedelta(minutes=5)
FLUSH_INTERVAL_SECONDS = 10.0


class Presence:
    def __init__(self) -> None:
        self._pending: dict[uuid.UUID, dict[uuid.UUID, datetime]] = {}
        # The newest time known per device in this process, flushed or not.
        self._known: dict[uuid.UUID, datetime] = {}
        self._known_by_tenant: dict[uuid.UUID, dict[uuid.UUID, datetime]] = {}

    def seen(self, tenant_id: uuid.UUID, device_id: uuid.UUID, at: datetime) -> None:
        self._pending.setdefault(tenant_id, {})[device_id] = at
        self._known[device_id] = at
        self._known_by_tenant.setdefault(tenant_id, {})[device_id] = at

    def seen_since(self, tenant_id: uuid.UUID, since: datetime) -> list[uuid.UUID]:
        """Devices of the tenant this process heard from at or after `since`."""
        known = self._known_by_tenant.get(tenant_id, {})
        stale = [d for d, at in known.items() if at < since]
        for device_id in stale:
            # Old entries are in the table by now (flushed); keep the map small.
            if device_id not in self._pending.get(tenant_id, {}):
                del known[device_id]
                self._known.pop(device_id, None)
        return [d for d, at in known.items() if at >= since]

    def last_seen(self, device_id: uuid.UUID, stored: datetime | None) -> datetime | None:
        mine = self._known.get(device_id)
        if mine is None:
            return stored
        return mine if stored is None or mine > stored else stored

    def forget(self, device_id: uuid.UUID) -> None:
        self._known.pop(device_id, None)
        for known in self._known_by_tenant.values():
            known.pop(device_id, None)
        for devices in self._pending.values():
            devices.pop(device_id, None)

    def take(self) -> dict[uuid.UUID, dict[uuid.UUID, datetime]]:
        pending, self._pending = self._pending, {}
        return pending

    def give_back(self, tenant_id: uuid.UUID, seen: dict[uuid.UUID, datetime]) -> None:
        devices = self._pending.setdefault(tenant_id, {})
        for device_id, at in seen.items():
            if device_id not in devices or devices[device_id] < at:
                devices[device_id] = at


def _new_presence(rt: Runtime) -> Presence:
    return Presence()


def presence(rt: Runtime) -> Presence:
    return rt.state.get(_new_presence)


def effective_status(
    stored_status: str,
    last_seen: datetime | None,
    now: datetime,
    disconnected_at: datetime | None = None,
) -> str:
    """`disabled`; `offline` once a device's session closed and nothing came since
    (`disconnected_at` at or after `last_seen`); else `online` while heard from within
    `OFFLINE_AFTER` (a live session keeps its device heard from)."""
    if stored_status == "disabled":
        return "disabled"
    if disconnected_at is not None and (last_seen is None or disconnected_at >= last_seen):
        return "offline"
    if last_seen is not None and last_seen >= now - OFFLINE_AFTER:
        return "online"
    return "offline"


async def flush(rt: Runtime) -> int:
    """Write this process's pending last-seen times; returns how many devices were updated."""
    state = presence(rt)
    updated = 0
    for tenant_id, seen in state.take().items():
        try:
            async with rt.db.tenant(system_context(tenant_id)) as session:
                updated += await DeviceRepository(
                    session, system_context(tenant_id)
                ).touch_last_seen(seen)
        except Exception:
            # Keep them for the next run rather than lose them.
            state.give_back(tenant_id, seen)
            log.exception("flushing last-seen times of tenant %s failed", tenant_id)
    return updated


def utcnow() -> datetime:
    return datetime.now(UTC)


# Each process flushes its own map; a run skipped because another process held the job's
# lock at that moment is caught up by the next one. On shutdown the last interval is flushed.
