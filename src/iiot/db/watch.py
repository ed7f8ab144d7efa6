"""Which tenants have live subscribers anywhere, told to the telemetry writes by advisory locks.

A process whose stream hub has subscribers of a tenant holds a shared session-level advisory
lock on the tenant's *watch* key (`WATCH_NAMESPACE`) on a connection of its own (`LiveWatch`).
Every telemetry write judges in its own statement, at no extra round trip, whether it must
publish its points for the other processes (`WATCHED_SQL`):

1. it takes a shared transaction-level lock on the tenant's *write* key (`WRITE_NAMESPACE`),
   held until its commit; if it cannot (a subscriber is registering) it publishes;
2. it probes the watch key: an exclusive session lock taken and released at once in the same
   expression; if it cannot be taken, some process holds it shared, and the write publishes.

Registering a subscriber first takes the shared watch lock, then waits for an exclusive lock
on the write key (released at once): every write whose probe came before the watch lock was
granted still holds its shared write lock, so the registration passes only once each of them
has committed. Hence a write committed after a subscriber's registration returned has seen
the watch lock and publishes, and the subscriber (listening before it registers) hears it;
a write that skipped publishing committed before the registration returned. A false
positive costs one NOTIFY; the locks never block a write (both are `try`), and they vanish with
the watching connection, whose loss the hub treats like a lost LISTEN connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import Any

import psycopg

from iiot.db.setup import plain_url

log = logging.getLogger(__name__)

WATCH_NAMESPACE = 727277
WRITE_NAMESPACE = 727278
# How long a registration waits for in-flight writes (or for the watch key); beyond it the
# registration fails and the subscriber is told to reload.
LOCK_TIMEOUT_MS = 5000


def watched_sql(tenant: str) -> str:
    """A boolean expression for a write's statement: True when the write must publish its
    points for live subscribers of other processes (`tenant`: the SQL of the tenant id)."""
    key = f"hashtext(({tenant})::text)"
    return f"""case
        when not pg_try_advisory_xact_lock_shared({WRITE_NAMESPACE}, {key}) then true
        when pg_try_advisory_lock({WATCH_NAMESPACE}, {key})
            then not pg_advisory_unlock({WATCH_NAMESPACE}, {key})
        else true
    end"""


_WATCH = f"select pg_advisory_lock_shared({WATCH_NAMESPACE}, hashtext(%(t)s::text))"  # noqa: S608
_BARRIER = f"select pg_advisory_xact_lock({WRITE_NAMESPACE}, hashtext(%(t)s::text))"  # noqa: S608
_UNWATCH = f"select pg_advisory_unlock_shared({WATCH_NAMESPACE}, hashtext(%(t)s::text))"  # noqa: S608


class LiveWatch:
    """This process's watch locks, on one session connection (`url`: not through a
    transaction-pooling bouncer). `on_lost` runs when the connection is lost while it held
    locks: from then on other processes' writes may no longer publish for this process."""

    def __init__(self, url: str, on_lost: Callable[[], None]) -> None:
        self._url = plain_url(url)
        self._on_lost = on_lost
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()
        self._held: set[uuid.UUID] = set()
        self._watching_fd: int | None = None

    @property
    def held(self) -> frozenset[uuid.UUID]:
        return frozenset(self._held)

    async def watch(self, tenant_id: uuid.UUID) -> bool:
        """Announce live subscribers of `tenant_id`; True once every write that may not have
        seen the announcement has committed (False: not announced, see `LOCK_TIMEOUT_MS`)."""
        async with self._lock:
            if tenant_id in self._held:
                return True
            try:
                conn = await self._connection()
                self._unwatch_socket()
                try:
                    return await self._announce(conn, tenant_id)
                finally:
                    self._watch_socket()
            except (psycopg.Error, OSError):
                log.warning("announcing live subscribers failed", exc_info=True)
                await self._drop()
                return False

    async def _announce(self, conn: psycopg.AsyncConnection[Any], tenant_id: uuid.UUID) -> bool:
        try:
            await conn.execute(_WATCH, {"t": tenant_id})
        except psycopg.errors.LockNotAvailable:
            log.warning(
                "the watch lock of tenant %s is taken; live updates not announced", tenant_id
            )
            return False
        try:
            await conn.execute(_BARRIER, {"t": tenant_id})
        except psycopg.errors.LockNotAvailable:
            log.warning(
                "writes of tenant %s stayed in flight; live updates not announced", tenant_id
            )
            await conn.execute(_UNWATCH, {"t": tenant_id})
            return False
        self._held.add(tenant_id)
        return True

    async def unwatch(self, tenant_id: uuid.UUID, still_watched: Callable[[], bool]) -> None:
        """Withdraw the announcement unless `still_watched()` (checked under the lock)."""
        async with self._lock:
            if tenant_id not in self._held or still_watched():
                return
            conn = self._conn
            if conn is None or conn.closed:
                return
            self._unwatch_socket()
            try:
                await conn.execute(_UNWATCH, {"t": tenant_id})
                self._held.discard(tenant_id)
            except (psycopg.Error, OSError):
                log.warning("withdrawing live subscribers failed", exc_info=True)
                await self._drop()
                return
            self._watch_socket()

    async def close(self) -> None:
        async with self._lock:
            self._unwatch_socket()
            self._held.clear()
            if self._conn is not None and not self._conn.closed:
                await self._conn.close()
            self._conn = None

    # --- the connection -------------------------------------------------------------------

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            self._held.clear()
            self._conn = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
            await self._conn.execute(f"set lock_timeout = {LOCK_TIMEOUT_MS}")
        return self._conn

    def _watch_socket(self) -> None:
        """While idle, the connection's socket is read when it becomes readable: the server
        closing it (or an error) is noticed at once instead of at the next use."""
        conn = self._conn
        if conn is None or conn.closed or self._watching_fd is not None:
            return
        fd = conn.fileno()
        asyncio.get_running_loop().add_reader(fd, self._readable)
        self._watching_fd = fd

    def _unwatch_socket(self) -> None:
        if self._watching_fd is not None:
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(self._watching_fd)
            self._watching_fd = None

    def _readable(self) -> None:
        conn = self._conn
        if conn is None:
            self._unwatch_socket()
            return
        try:
            conn.pgconn.consume_input()
            lost = conn.pgconn.status != psycopg.pq.ConnStatus.OK
        except psycopg.Error:
            lost = True
        if lost:
            self._unwatch_socket()
            asyncio.get_running_loop().create_task(self._drop(), name="live-watch-lost")

    async def _drop(self) -> None:
        """The connection is gone (or unusable): its locks with it."""
        self._unwatch_socket()
        had = bool(self._held)
        self._held.clear()
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            with contextlib.suppress(psycopg.Error, OSError):
                await conn.close()
        if had:
            self._on_lost()
