"""The in-process cache of device-token look-ups, kept honest by LISTEN/NOTIFY.

Rotating, revoking, disabling or deleting a device NOTIFYs `iiot_device_credentials` with the
device id in the same transaction; every process LISTENs and evicts that device's entries as
soon as the change commits. The cache is used only while the listener is connected (after a
lost connection it is emptied and bypassed until the listener is back), and every entry also
expires after `ttl_seconds` as a backstop. Ingest re-checks the credential inside its own
write transaction too, so a token revoked before that transaction is refused even if a
notification is still in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import TYPE_CHECKING

import psycopg

from iiot.db.setup import plain_url
from iiot.devices.repository import CREDENTIALS_CHANNEL, DeviceTokenRepository, TokenOwner

if TYPE_CHECKING:
    from iiot.runtime import Runtime

log = logging.getLogger(__name__)

DEFAULT_TTL_SECONDS = 30.0
MAX_ENTRIES = 100_000


class DeviceTokenCache:
    def __init__(self, rt: Runtime, ttl_seconds: float = DEFAULT_TTL_SECONDS) -> None:
        self._rt = rt
        self.ttl_seconds = ttl_seconds
        self._entries: dict[bytes, tuple[TokenOwner, float]] = {}
        self._by_device: dict[uuid.UUID, set[bytes]] = {}
        # Bumped by every eviction, so a look-up that raced a notification is not cached.
        self._generation = 0
        self._listening = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def listening(self) -> bool:
        return self._listening.is_set()

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._listen(), name="device-token-listener")

    async def wait_listening(self, timeout: float = 5.0) -> None:
        self.start()
        await asyncio.wait_for(self._listening.wait(), timeout)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._listening.clear()
        self.clear()

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()
        self._by_device.clear()

    def evict_device(self, device_id: uuid.UUID) -> None:
        self._generation += 1
        for token_digest in self._by_device.pop(device_id, ()):
            self._entries.pop(token_digest, None)

    async def owner(self, token_digest: bytes) -> TokenOwner | None:
        """The device (and tenant) a token belongs to, or None for an unknown/revoked token."""
        self.start()
        now = time.monotonic()
        hit = self._entries.get(token_digest)
        if hit is not None and hit[1] > now and self.listening:
            return hit[0]
        generation = self._generation
        async with self._rt.db.system() as session:
            found = await DeviceTokenRepository(session).owner(token_digest)
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

    async def _listen(self) -> None:
        backoff = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    plain_url(self._rt.db.url), autocommit=True
                ) as conn:
                    await conn.execute(f"listen {CREDENTIALS_CHANNEL}")
                    # Entries cached before this point may have missed a notification.
                    self.clear()
                    self._listening.set()
                    backoff = 0.5
                    async for note in conn.notifies():
                        try:
                            self.evict_device(uuid.UUID(note.payload))
                        except ValueError:
                            self.clear()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("device token listener lost its connection; retrying", exc_info=True)
            self._listening.clear()
            self.clear()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)


def token_cache(rt: Runtime) -> DeviceTokenCache:
    return rt.state.get(DeviceTokenCache)


async def stop_listener(rt: Runtime) -> None:
    cache = rt.state.peek(DeviceTokenCache)
    if cache is not None:
        await cache.stop()
