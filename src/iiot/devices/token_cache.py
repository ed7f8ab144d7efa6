"""The in-process cache of device-token look-ups, kept honest by LISTEN/NOTIFY.

Rotating, revoking, disabling or deleting a device NOTIFYs `iiot_device_credentials` with the
device id in the same transaction; every process hears it on its one LISTEN connection
(`iiot.db.listen`) and evicts that device's entries as soon as the change commits. The cache
is used only while the listener is connected (after a lost connection it is emptied and
bypassed until the listener is back), and every entry also expires after `ttl_seconds` as a
backstop. Ingest re-checks the credential inside its own write transaction too, so a token
revoked before that transaction is refused even if a notification is still in flight.

A look-up's statement reads a snapshot taken when it starts; a notice heard while it runs may
be about a change committed after that snapshot. A look-up that found the token is read
again when a notice about its device or tenant (or a lost listener) came in meanwhile, so what
it returns is never older than a notice already handled: a session opened with it is attached
before any later notice, whose re-check then covers it (`iiot.connectivity.hub`).

An entry also holds the device's name and gateway flag (read in the look-up's one statement,
under the tenant's row-level security), which is all a device session needs to open: a
change of the gateway flag or of the name notifies like a credential change.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from iiot.db.listen import Subscription, listener
from iiot.devices.repository import (
    CREDENTIALS_CHANNEL,
    TENANT_PAYLOAD_PREFIX,
    TokenOwner,
    token_holder,
)
from iiot.errors import ServiceUnavailable

if TYPE_CHECKING:
    from iiot.runtime import Runtime

log = logging.getLogger(__name__)

# A backstop only (the notifications evict, and ingest re-checks the credential in its write
# transaction): with 30 s, a thousand devices each sending every ten seconds had a third of
# their requests look the token up again.
DEFAULT_TTL_SECONDS = 300.0
MAX_ENTRIES = 100_000
# Re-reads of a look-up whose device or tenant keeps changing while it is read; past them the
# look-up fails (the caller may retry) rather than answer from a snapshot a notice outdated.
MAX_REREADS = 3


@dataclass(slots=True, eq=False)
class _InFlight:
    """What notices said while a look-up was running."""

    devices: set[uuid.UUID] = field(default_factory=set)
    tenants: set[uuid.UUID] = field(default_factory=set)
    everything: bool = False

    def outdates(self, found: TokenOwner) -> bool:
        return self.everything or found.device_id in self.devices or found.tenant_id in self.tenants


class DeviceTokenCache:
    def __init__(self, rt: Runtime, ttl_seconds: float = DEFAULT_TTL_SECONDS) -> None:
        self._rt = rt
        self.ttl_seconds = ttl_seconds
        self._entries: dict[bytes, tuple[TokenOwner, float]] = {}
        self._by_device: dict[uuid.UUID, set[bytes]] = {}
        # Bumped by every eviction, so a look-up that raced a notification is not cached.
        self._generation = 0
        self._in_flight: set[_InFlight] = set()
        self._subscription = Subscription(
            {CREDENTIALS_CHANNEL: self.on_notification}, reset=self.clear, name="device tokens"
        )

    @property
    def listening(self) -> bool:
        return listener(self._rt).hears(self._subscription)

    def start(self) -> None:
        listener(self._rt).add(self._subscription)

    async def wait_listening(self, timeout: float = 5.0) -> None:
        self.start()
        await listener(self._rt).ready(self._subscription, timeout)

    async def stop(self) -> None:
        await listener(self._rt).remove(self._subscription)
        self.clear()

    def clear(self) -> None:
        self._generation += 1
        for lookup in self._in_flight:
            lookup.everything = True
        self._entries.clear()
        self._by_device.clear()

    def evict_tenant(self, tenant_id: uuid.UUID) -> None:
        """Forget every token of a tenant (its status changed: suspended, deleted, restored)."""
        self._generation += 1
        for lookup in self._in_flight:
            lookup.tenants.add(tenant_id)
        for token_digest, (owner, _) in list(self._entries.items()):
            if owner.tenant_id == tenant_id:
                self._entries.pop(token_digest, None)
                self._by_device.pop(owner.device_id, None)

    async def fresh_owner(self, token_digest: bytes) -> TokenOwner | None:
        """The token's owner read from the database now, its cached entry dropped."""
        self._generation += 1
        hit = self._entries.pop(token_digest, None)
        if hit is not None:
            self._by_device.pop(hit[0].device_id, None)
        return await token_holder(self._rt.db, token_digest)

    def on_notification(self, payload: str) -> None:
        """`<device id>` or `tenant:<tenant id>`; anything else empties the cache."""
        try:
            if payload.startswith(TENANT_PAYLOAD_PREFIX):
                self.evict_tenant(uuid.UUID(payload.removeprefix(TENANT_PAYLOAD_PREFIX)))
            else:
                self.evict_device(uuid.UUID(payload))
        except ValueError:
            self.clear()

    def evict_device(self, device_id: uuid.UUID) -> None:
        self._generation += 1
        for lookup in self._in_flight:
            lookup.devices.add(device_id)
        for token_digest in self._by_device.pop(device_id, ()):
            self._entries.pop(token_digest, None)

    async def owner(self, token_digest: bytes) -> TokenOwner | None:
        """The device (and tenant) a token belongs to, with the device's name and gateway flag
        (`token_holder`: one statement, its own transaction), or None for an unknown/revoked
        token."""
        self.start()
        now = time.monotonic()
        hit = self._entries.get(token_digest)
        if hit is not None and hit[1] > now and self.listening:
            return hit[0]
        generation = self._generation
        found = await self._read(token_digest)
        # Only a token that may write is cached: a refusal (disabled device, suspended
        # tenant) is looked up afresh, so re-enabling takes effect on the next request.
        usable = (
            found is not None
            and found.device_status != "disabled"
            and found.tenant_status != "suspended"
        )
        if usable and found is not None and self.listening and generation == self._generation:
            if len(self._entries) >= MAX_ENTRIES:
                self.clear()
            self._entries[token_digest] = (found, now + self.ttl_seconds)
            self._by_device.setdefault(found.device_id, set()).add(token_digest)
        return found

    async def _read(self, token_digest: bytes) -> TokenOwner | None:
        """`token_holder`, read again while a notice heard meanwhile may have outdated it."""
        for _ in range(1 + MAX_REREADS):
            lookup = _InFlight()
            self._in_flight.add(lookup)
            try:
                found = await token_holder(self._rt.db, token_digest)
            finally:
                self._in_flight.discard(lookup)
            # A token not found stays refused: one issued after the snapshot is refused a
            # moment too early, never a revoked one accepted.
            if found is None or not lookup.outdates(found):
                return found
        raise ServiceUnavailable("the device's credentials are changing; try again")


def token_cache(rt: Runtime) -> DeviceTokenCache:
    return rt.state.get(DeviceTokenCache)


async def stop_listener(rt: Runtime) -> None:
    cache = rt.state.peek(DeviceTokenCache)
    if cache is not None:
        await cache.stop()
