"""The per-process hub of live subscribers, fed in-process and across processes by NOTIFY.

Telemetry: the ingesting process delivers a committed batch to its own subscribers at once
(a telemetry listener on `iiot.events`) and publishes a small NOTIFY on `iiot_telemetry` for
the other processes; a process ignores its own notifications. Alerts: the alert repository
NOTIFYs `iiot_alerts` inside the transaction that opens or changes an alert, so every process
(this one included) hears of it only once it is committed. Nothing is ever read back from the
telemetry table: a notification carries the values. Access: when a membership is deleted or
an account disabled, `iiot_memberships` ends that person's streams at once (`revoked`).

Telemetry is published to the other processes only when the write found, inside its own
transaction, that some process announced live subscribers of the tenant (`iiot.db.watch`):
a process announces a tenant before its first subscriber of that tenant is `ready`, and stops
when the last one leaves, so writes of tenants nobody watches cost no NOTIFY.

Every notification names its tenant, and a subscriber only ever receives notifications of
the tenant its stream was opened for, for the devices it was allowed to watch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
import psycopg

from iiot.alerts.lookup import ALERTS_CHANNEL, alert_notice
from iiot.db.listen import Subscription, listener
from iiot.db.setup import plain_url
from iiot.db.watch import LiveWatch
from iiot.events import TelemetryCommitted, newest_points

if TYPE_CHECKING:
    from iiot.runtime import Runtime

log = logging.getLogger(__name__)

TELEMETRY_CHANNEL = "iiot_telemetry"
PUBLISH = "select pg_notify(%s, %s)"
# Someone's access ended (raised by database triggers, migration 0014): `{"t", "u"}` when a
# membership was deleted, `{"u"}` when an account was disabled.
MEMBERSHIP_CHANNEL = "iiot_memberships"
# A NOTIFY payload must stay under 8000 bytes.
MAX_PAYLOAD_BYTES = 7000
# Events waiting for a slow subscriber; beyond this it is told it lagged and must reload.
SUBSCRIBER_QUEUE = 500
# Batches waiting to be published to the other processes; beyond this they are dropped
# (live views are best effort; the data itself is committed and queryable).
PUBLISH_QUEUE = 1000
RECONNECT_SECONDS = 1.0


@dataclass(eq=False)
class Subscriber:
    tenant_id: uuid.UUID
    devices: frozenset[uuid.UUID]
    # The person whose access the stream rests on (None for an API key).
    user_id: uuid.UUID | None = None
    queue: asyncio.Queue[tuple[str, bytes]] = field(
        default_factory=lambda: asyncio.Queue(SUBSCRIBER_QUEUE)
    )
    lagged: bool = False

    def offer(self, event: str, data: bytes) -> None:
        if self.lagged:
            return
        try:
            self.queue.put_nowait((event, data))
        except asyncio.QueueFull:
            # Tell the page once that it missed events; it reloads what it shows.
            self.lagged = True
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.queue.put_nowait(("lagged", b"{}"))

    def revoke(self) -> None:
        """Access ended: nothing more is sent but `revoked`, which ends the stream."""
        self.lagged = True  # accepts nothing further
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(("revoked", b"{}"))


def _point_rows(event: TelemetryCommitted) -> list[list[Any]]:
    return [[str(p.device_id), p.key, p.ts.isoformat(), p.value] for p in event.points]


class StreamHub:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.origin = uuid.uuid4().hex
        self._subscribers: dict[uuid.UUID, set[Subscriber]] = {}
        self._subscription = Subscription(
            {
                TELEMETRY_CHANNEL: self._on_telemetry,
                ALERTS_CHANNEL: self._on_alert,
                MEMBERSHIP_CHANNEL: self._on_access_ended,
            },
            reset=self._missed,
            name="live stream",
        )
        self._subscribed = False
        self._outbox: asyncio.Queue[TelemetryCommitted] = asyncio.Queue(PUBLISH_QUEUE)
        self._publisher: asyncio.Task[None] | None = None
        self._watch = LiveWatch(rt.db.session_url, self._watch_lost)
        self._unwatching: set[asyncio.Task[None]] = set()

    # --- subscribers ------------------------------------------------------------------------

    async def subscribe(
        self,
        tenant_id: uuid.UUID,
        devices: frozenset[uuid.UUID],
        user_id: uuid.UUID | None = None,
    ) -> Subscriber:
        sub = Subscriber(tenant_id, devices, user_id)
        self._subscribers.setdefault(tenant_id, set()).add(sub)
        self._subscribed = True
        try:
            # Wait (briefly) until notifications are received, then announce the tenant as
            # watched, so that nothing committed after the stream said `ready` is missed.
            with contextlib.suppress(TimeoutError):
                await listener(self.rt).ready(self._subscription, 5)
            if not await self._watch.watch(tenant_id):
                # Other processes' writes might not publish to this one: the page reloads.
                sub.offer("lagged", b"{}")
                sub.lagged = True
        except BaseException:
            self.unsubscribe(sub)
            raise
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        subs = self._subscribers.get(sub.tenant_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subscribers[sub.tenant_id]
                self._unwatch_later(sub.tenant_id)

    def _unwatch_later(self, tenant_id: uuid.UUID) -> None:
        """Withdraw the tenant's announcement, unless a subscriber of it came back meanwhile."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # shutting down: the announcements end with their connection
        task = loop.create_task(
            self._watch.unwatch(tenant_id, lambda: tenant_id in self._subscribers),
            name="stream-unwatch",
        )
        self._unwatching.add(task)
        task.add_done_callback(self._unwatching.discard)

    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

    # --- delivery ---------------------------------------------------------------------------

    def deliver_telemetry(self, tenant_id: uuid.UUID, rows: list[list[Any]]) -> None:
        subs = self._subscribers.get(tenant_id)
        if not subs:
            return
        by_device: dict[str, list[list[Any]]] = {}
        for row in rows:
            by_device.setdefault(row[0], []).append(row[1:])
        for device, points in by_device.items():
            try:
                device_id = uuid.UUID(device)
            except ValueError:
                continue
            data: bytes | None = None
            for sub in subs:
                if device_id in sub.devices:
                    if data is None:
                        data = orjson.dumps({"device_id": device, "points": points})
                    sub.offer("telemetry", data)

    def deliver_alert(self, tenant_id: uuid.UUID, alert: dict[str, Any]) -> None:
        subs = self._subscribers.get(tenant_id)
        if not subs:
            return
        data = orjson.dumps(alert)
        for sub in subs:
            sub.offer("alert", data)

    # --- in-process telemetry and NOTIFY for the other processes -----------------------------

    def telemetry_committed(self, event: TelemetryCommitted) -> None:
        if event.tenant_id in self._subscribers:  # rendered only for a tenant that is watched
            self.deliver_telemetry(event.tenant_id, _point_rows(event))
        if not event.watched:
            return  # no other process has a subscriber of the tenant
        try:
            self._outbox.put_nowait(event)
        except asyncio.QueueFull:
            log.warning("live telemetry publishing is behind; a batch is not published")
            return
        if self._publisher is None or self._publisher.done():
            self._publisher = asyncio.create_task(self._publish(), name="stream-publisher")

    def _payloads(self, events: list[TelemetryCommitted]) -> list[str]:
        """Small NOTIFY payloads: the newest value per (device, key) of each tenant."""
        newest: dict[uuid.UUID, dict[tuple[uuid.UUID, str], Any]] = {}
        for event in events:
            per_tenant = newest.setdefault(event.tenant_id, {})
            for p in newest_points(event.points):
                current = per_tenant.get((p.device_id, p.key))
                if current is None or current.ts <= p.ts:
                    per_tenant[(p.device_id, p.key)] = p
        # Only the newest point of each series is rendered (a batch's other points are not).
        rendered = {
            tenant_id: [
                [str(p.device_id), p.key, p.ts.isoformat(), p.value] for p in points.values()
            ]
            for tenant_id, points in newest.items()
        }
        payloads: list[str] = []
        for tenant_id, rows in rendered.items():
            chunk: list[list[Any]] = []
            size = 0
            for row in rows:
                row_size = len(orjson.dumps(row)) + 1
                if chunk and size + row_size > MAX_PAYLOAD_BYTES:
                    payloads.append(self._payload(tenant_id, chunk))
                    chunk, size = [], 0
                if row_size <= MAX_PAYLOAD_BYTES:
                    chunk.append(row)
                    size += row_size
            if chunk:
                payloads.append(self._payload(tenant_id, chunk))
        return payloads

    def _payload(self, tenant_id: uuid.UUID, rows: list[list[Any]]) -> str:
        return orjson.dumps({"o": self.origin, "t": str(tenant_id), "p": rows}).decode()

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        return await publishing_connection(plain_url(self.rt.db.url))

    async def _publish(self) -> None:
        conn: psycopg.AsyncConnection[Any] | None = None
        try:
            while True:
                events = [await self._outbox.get()]
                while not self._outbox.empty():
                    events.append(self._outbox.get_nowait())
                try:
                    if conn is None or conn.closed:
                        conn = await self._connect()
                    for payload in self._payloads(events):
                        await conn.execute(PUBLISH, (TELEMETRY_CHANNEL, payload))
                except (psycopg.Error, OSError):
                    log.warning("publishing live telemetry failed; %d batches lost", len(events))
                    if conn is not None:
                        await conn.close()
                    conn = None
                    await asyncio.sleep(RECONNECT_SECONDS)
        finally:
            if conn is not None and not conn.closed:
                await conn.close()

    # --- LISTEN -----------------------------------------------------------------------------

    def _on_telemetry(self, payload: str) -> None:
        try:
            note = orjson.loads(payload)
            tenant_id = uuid.UUID(note["t"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("ignoring a malformed notification on %s", TELEMETRY_CHANNEL)
            return
        if note.get("o") != self.origin:
            self.deliver_telemetry(tenant_id, note.get("p") or [])

    def _on_alert(self, payload: str) -> None:
        notice = alert_notice(payload)
        if notice is None:
            log.warning("ignoring a malformed notification on %s", ALERTS_CHANNEL)
            return
        self.deliver_alert(*notice)

    def _on_access_ended(self, payload: str) -> None:
        try:
            note = orjson.loads(payload)
            user_id = uuid.UUID(note["u"])
            tenant_id = uuid.UUID(note["t"]) if note.get("t") else None
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("ignoring a malformed notification on %s", MEMBERSHIP_CHANNEL)
            return
        groups = (
            [self._subscribers.get(tenant_id, set())]
            if tenant_id is not None
            else list(self._subscribers.values())
        )
        for subs in groups:
            for sub in subs:
                if sub.user_id == user_id:
                    sub.revoke()

    def _missed(self) -> None:
        """The listener lost its connection: every open stream may have missed events, so
        each is told once that it lagged and reloads what it shows."""
        if listener(self.rt).connected:
            return
        self._all_lagged()

    def _watch_lost(self) -> None:
        """The connection holding the announcements was lost: other processes' writes may
        have stopped publishing to this one, so every open stream reloads."""
        self._all_lagged()

    def _all_lagged(self) -> None:
        for subs in self._subscribers.values():
            for sub in subs:
                sub.offer("lagged", b"{}")
                sub.lagged = True

    async def close(self) -> None:
        if self._subscribed:
            self._subscribed = False
            await listener(self.rt).remove(self._subscription)
        for task in list(self._unwatching):
            task.cancel()
        await asyncio.gather(*self._unwatching, return_exceptions=True)
        await self._watch.close()
        if self._publisher is not None:
            self._publisher.cancel()
            await asyncio.gather(self._publisher, return_exceptions=True)
            self._publisher = None


def hub(rt: Runtime) -> StreamHub:
    """This process's hub."""
    return rt.state.get(StreamHub)


async def on_telemetry(rt: Runtime, event: TelemetryCommitted) -> None:
    """The telemetry listener: deliver in-process, publish for the other processes."""
    hub(rt).telemetry_committed(event)


async def shutdown(rt: Runtime) -> None:
    found = rt.state.peek(StreamHub)
    if found is not None:
        await found.close()


async def publishing_connection(url: str) -> psycopg.AsyncConnection[Any]:
    """The publisher's connection to `url`, the transactions' (libpq) URL, which may be a
    transaction pooler. Nothing is prepared on it: psycopg prepares a statement on its sixth
    run, and behind a pooler a later NOTIFY may reach a server session where that prepared
    statement is missing or another has its name, and fail, losing the batches it carried."""
    return await psycopg.AsyncConnection.connect(url, autocommit=True, prepare_threshold=None)
