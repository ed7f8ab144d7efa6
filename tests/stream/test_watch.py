"""Live telemetry is published to other processes only while some process watches the tenant
(`iiot.db.watch`): announced by a session advisory lock, judged by each write in its own
transaction, with a barrier so that no write committed after a registration is missed."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg

from iiot.db.setup import plain_url
from iiot.db.watch import WATCH_NAMESPACE, WRITE_NAMESPACE, LiveWatch, watched_sql
from iiot.runtime import Runtime
from iiot.stream.hub import TELEMETRY_CHANNEL, hub
from tests.fixtures.database import TestDatabase
from tests.fixtures.factories import World
from tests.rules.helpers import make_device, next_ts
from tests.stream.test_stream import http, open_stream


class Published:
    """What this test hears on the live-telemetry channel, for one tenant."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], tenant_id: uuid.UUID) -> None:
        self.conn = conn
        self.tenant = str(tenant_id)

    async def next_value(self, timeout: float = 5.0) -> float:
        """The value of the next notification of the tenant."""
        async with asyncio.timeout(timeout):
            async for note in self.conn.notifies():
                payload = json.loads(note.payload)
                if payload["t"] == self.tenant:
                    return float(payload["p"][0][3])
        raise AssertionError("unreachable")


@asynccontextmanager
async def published(db_urls: TestDatabase, tenant_id: uuid.UUID) -> AsyncIterator[Published]:
    async with await psycopg.AsyncConnection.connect(
        plain_url(db_urls.app_url), autocommit=True
    ) as conn:
        await conn.execute(f"listen {TELEMETRY_CHANNEL}")
        yield Published(conn, tenant_id)


@asynccontextmanager
async def watcher(
    db_urls: TestDatabase, lost: list[bool] | None = None
) -> AsyncIterator[LiveWatch]:
    """The announcements of "another process"."""
    watch = LiveWatch(db_urls.app_url, lambda: (lost if lost is not None else []).append(True))
    try:
        yield watch
    finally:
        await watch.close()


async def _post(world: World, device_id: str, value: float) -> None:
    r = await world.a["operator"].client.post(
        "/api/v1/telemetry",
        json={
            "device_id": device_id,
            "timestamp": next_ts().isoformat().replace("+00:00", "Z"),
            "telemetry": {"temperature": value},
        },
    )
    assert r.status_code == 201, r.text


async def test_writes_publish_only_while_another_process_watches_the_tenant(
    runtime: Runtime, world: World, db_urls: TestDatabase
) -> None:
    device = await make_device(world.a["developer"])
    tenant = world.tenant_a.id
    async with published(db_urls, tenant) as heard, watcher(db_urls) as other:
        await _post(world, device["id"], 1.0)  # nobody watches: not published
        assert await other.watch(tenant)
        await _post(world, device["id"], 2.0)
        # The publisher is first in, first out: had 1.0 been published it would come first.
        assert await heard.next_value() == 2.0

        await other.unwatch(tenant, lambda: False)
        await _post(world, device["id"], 3.0)  # not watched any more
        assert await other.watch(tenant)
        await _post(world, device["id"], 4.0)
        assert await heard.next_value() == 4.0


async def test_a_registration_waits_for_writes_that_did_not_see_it(
    world: World, db_urls: TestDatabase
) -> None:
    tenant = world.tenant_a.id
    async with (
        await psycopg.AsyncConnection.connect(plain_url(db_urls.app_url)) as writing,
        watcher(db_urls) as other,
    ):
        # A write's judgement, in its transaction: nobody watches, so it would not publish.
        cur = await writing.execute(f"select {watched_sql('%(t)s')}", {"t": tenant})
        assert await cur.fetchone() == (False,)
        registering = asyncio.create_task(other.watch(tenant))
        await asyncio.sleep(0.5)
        assert not registering.done(), "registered while a write that skipped it is in flight"
        # A write judging now (the registration under way) publishes.
        async with await psycopg.AsyncConnection.connect(
            plain_url(db_urls.app_url), autocommit=True
        ) as later:
            cur = await later.execute(f"select {watched_sql('%(t)s')}", {"t": tenant})
            assert await cur.fetchone() == (True,)
        await writing.commit()
        assert await asyncio.wait_for(registering, 5)
        # Registered: every write from now on publishes.
        cur = await writing.execute(f"select {watched_sql('%(t)s')}", {"t": tenant})
        assert await cur.fetchone() == (True,)
        await writing.rollback()


async def test_the_write_lock_is_shared_between_writes(world: World, db_urls: TestDatabase) -> None:
    """Concurrent writes of a tenant (two processes, or a batch beside a group) do not make
    each other publish."""
    tenant = world.tenant_a.id
    url = plain_url(db_urls.app_url)
    async with (
        await psycopg.AsyncConnection.connect(url) as first,
        await psycopg.AsyncConnection.connect(url) as second,
    ):
        for conn in (first, second):
            cur = await conn.execute(f"select {watched_sql('%(t)s')}", {"t": tenant})
            assert await cur.fetchone() == (False,)
        cur = await first.execute(
            "select count(*) from pg_locks where locktype = 'advisory' and classid = %s"
            " and objid = hashtext(%s::text)::oid and mode = 'ShareLock'",
            (WRITE_NAMESPACE, str(tenant)),
        )
        assert await cur.fetchone() == (2,)


async def test_a_lost_watch_connection_ends_the_announcements(
    world: World, db_urls: TestDatabase, owner_engine: Any
) -> None:
    tenant = world.tenant_a.id
    lost: list[bool] = []
    async with (
        watcher(db_urls, lost) as other,
        await psycopg.AsyncConnection.connect(plain_url(db_urls.admin_url), autocommit=True) as su,
    ):
        assert await other.watch(tenant)
        cur = await su.execute(f"select {watched_sql('%(t)s')}", {"t": tenant})
        assert await cur.fetchone() == (True,)
        (pid,) = [
            r[0]
            for r in await (
                await su.execute(
                    "select pid from pg_locks where locktype = 'advisory' and classid = %s"
                    " and objid = hashtext(%s::text)::oid and mode = 'ShareLock' and granted",
                    (WATCH_NAMESPACE, str(tenant)),
                )
            ).fetchall()
        ]
        await su.execute("select pg_terminate_backend(%s)", (pid,))
        async with asyncio.timeout(5):
            while not lost:
                await asyncio.sleep(0.02)
        assert other.held == frozenset()
        cur = await su.execute(f"select {watched_sql('%(t)s')}", {"t": tenant})
        assert await cur.fetchone() == (False,)


async def test_a_stream_reloads_when_its_process_stops_announcing(
    live_server: str, runtime: Runtime, world: World, db_urls: TestDatabase
) -> None:
    """Without the announcement other processes' writes would stop publishing to this one,
    so its open streams are told they lagged (and reload)."""
    device = await make_device(world.a["developer"])
    async with (
        http(live_server) as client,
        open_stream(client, world.a["viewer"], [device["id"]]) as events,
        await psycopg.AsyncConnection.connect(plain_url(db_urls.admin_url), autocommit=True) as su,
    ):
        assert world.tenant_a.id in hub(runtime)._watch.held
        cur = await su.execute(
            "select pid from pg_locks where locktype = 'advisory' and classid = %s"
            " and objid = hashtext(%s::text)::oid and mode = 'ShareLock' and granted",
            (WATCH_NAMESPACE, str(world.tenant_a.id)),
        )
        (row,) = await cur.fetchall()
        await su.execute("select pg_terminate_backend(%s)", (row[0],))
        await events.wait_for("lagged")
