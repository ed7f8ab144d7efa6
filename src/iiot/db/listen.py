"""One LISTEN connection per process, shared by every cache and hub fed by NOTIFY.

A consumer describes what it hears in a `Subscription` (a handler per channel, and a `reset`
called whenever notifications may have been missed) and adds it to the process's `listener`:

    sub = Subscription({CHANNEL: on_payload}, reset=cache.clear)
    listener(rt).add(sub)                 # connects in the background if it is not yet
    await listener(rt).ready(sub)         # optional: wait until its channels are heard
    ...
    await listener(rt).remove(sub)        # the connection closes with the last subscription

The connection is the server session of its own (`session_url`: LISTEN needs one, so not
through a transaction-pooling bouncer). It is used by one task only, which waits until the
socket has something to read or a consumer asked for something, so a notification is handled
as soon as it arrives and nothing polls. A lost connection is re-opened with backoff (0.5 s
doubling to 10 s); every subscription's `reset` runs when it is lost and again once the new
connection listens, before its first notification, since notices sent in between are gone.
A cache is to be trusted only while `connected` is true.

`sync()` is a round trip on the listening connection: PostgreSQL delivers every notification
committed before it ahead of the answer, so once it returns True each of them has been
handled (the rule cache relies on it before every use).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from iiot.db.setup import plain_url

if TYPE_CHECKING:
    from iiot.runtime import Runtime

log = logging.getLogger(__name__)

FIRST_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 10.0
# How long `sync()` waits for the very first connection of the process.
FIRST_CONNECT_SECONDS = 5.0


@dataclass(eq=False)
class Subscription:
    """Handlers by channel name (each gets the payload), and what to forget when
    notifications may have been missed."""

    handlers: dict[str, Callable[[str], None]]
    reset: Callable[[], None] | None = None
    name: str = ""
    channels: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        self.channels = frozenset(self.handlers)


class Listener:
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._subscriptions: list[Subscription] = []
        self._listened: set[str] = set()
        self._connected = False
        self._ever_connected = False
        self._task: asyncio.Task[None] | None = None
        # Set by the socket becoming readable and by any request for the connection's task.
        self._wake = asyncio.Event()
        self._syncs: list[asyncio.Future[bool]] = []
        self._changed = asyncio.Event()

    # -- consumers ---------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Notifications are being received (caches may be trusted)."""
        return self._connected

    def add(self, sub: Subscription) -> None:
        if sub not in self._subscriptions:
            self._subscriptions.append(sub)
            self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="db-listener")

    def hears(self, sub: Subscription) -> bool:
        return self._connected and sub.channels <= self._listened

    async def ready(self, sub: Subscription, timeout: float = 5.0) -> None:
        """Wait until `sub`'s channels are listened to (TimeoutError otherwise)."""
        self.add(sub)
        async with asyncio.timeout(timeout):
            while not self.hears(sub):
                self._changed.clear()
                await self._changed.wait()

    async def remove(self, sub: Subscription) -> None:
        """Stop delivering to `sub`; the last removal closes the connection."""
        with contextlib.suppress(ValueError):
            self._subscriptions.remove(sub)
        if not self._subscriptions:
            await self.stop()

    async def sync(self) -> bool:
        """Handle every notification committed so far; False when not listening."""
        if not self._connected:
            if self._ever_connected or self._task is None or self._task.done():
                return False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FIRST_CONNECT_SECONDS):
                    while not self._connected and self._task is not None:
                        self._changed.clear()
                        await self._changed.wait()
            if not self._connected:
                return False
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._syncs.append(done)
        self._wake.set()
        return await done

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- the connection's task ------------------------------------------------------------

    def _state_changed(self) -> None:
        self._changed.set()

    def _reset_all(self) -> None:
        for sub in list(self._subscriptions):
            if sub.reset is not None:
                try:
                    sub.reset()
                except Exception:
                    log.exception("resetting %s after a listener change failed", sub.name)

    def _dispatch(self, channel: str, payload: str) -> None:
        for sub in list(self._subscriptions):
            handler = sub.handlers.get(channel)
            if handler is None:
                continue
            try:
                handler(payload)
            except Exception:
                log.exception("notification handler of %s on %s failed", sub.name, channel)

    async def _listen_to_new_channels(self, conn: psycopg.AsyncConnection[Any]) -> None:
        wanted = {c for sub in self._subscriptions for c in sub.channels}
        for channel in sorted(wanted - self._listened):
            await conn.execute(sql.SQL("listen {}").format(sql.Identifier(channel)))
            self._listened.add(channel)

    async def _drain(self, conn: psycopg.AsyncConnection[Any]) -> None:
        async for note in conn.notifies(timeout=0):
            self._dispatch(note.channel, note.payload)

    async def _serve(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """One pass: new channels, notifications received, sync round trips."""
        before = set(self._listened)
        await self._listen_to_new_channels(conn)
        if self._listened != before:
            self._state_changed()
        syncs, self._syncs = self._syncs, []
        if syncs:
            await conn.execute("select 1")
        await self._drain(conn)
        for done in syncs:
            if not done.done():
                done.set_result(True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = FIRST_BACKOFF_SECONDS
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    plain_url(self._rt.db.session_url), autocommit=True
                ) as conn:
                    await self._listen_to_new_channels(conn)
                    self._connected = self._ever_connected = True
                    self._reset_all()
                    self._state_changed()
                    backoff = FIRST_BACKOFF_SECONDS
                    while True:
                        self._wake.clear()
                        await self._serve(conn)
                        fd = conn.fileno()
                        loop.add_reader(fd, self._wake.set)
                        try:
                            await self._wake.wait()
                        finally:
                            loop.remove_reader(fd)
            except asyncio.CancelledError:
                self._lost()
                raise
            except Exception:
                log.warning("LISTEN connection lost; reconnecting", exc_info=True)
            self._lost()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    def _lost(self) -> None:
        was_connected = self._connected
        self._connected = False
        self._listened.clear()
        syncs, self._syncs = self._syncs, []
        for done in syncs:
            if not done.done():
                done.set_result(False)
        if was_connected:
            self._reset_all()
        self._state_changed()


def listener(rt: Runtime) -> Listener:
    """This process's listener."""
    return rt.state.get(Listener)
