"""The process's one LISTEN connection: handlers by channel, `sync()`, reset and reconnect."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest

from iiot.app import MODULES
from iiot.config import Settings
from iiot.db.listen import Listener, Subscription, listener
from iiot.db.setup import plain_url
from iiot.runtime import Runtime
from tests.fixtures.database import TestDatabase

CHANNEL_A = "iiot_test_listen_a"
CHANNEL_B = "iiot_test_listen_b"
APP_NAME = f"iiot-listen-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def process(settings: Settings, db_urls: TestDatabase) -> AsyncIterator[Runtime]:
    # Named, so that its connections are told apart from the test session's own.
    rt = Runtime.build(settings, f"{db_urls.app_url}?application_name={APP_NAME}", MODULES)
    yield rt
    await listener(rt).stop()
    await rt.db.dispose()


@pytest.fixture
async def sender(db_urls: TestDatabase) -> AsyncIterator[psycopg.AsyncConnection[tuple[object]]]:
    conn = await psycopg.AsyncConnection.connect(plain_url(db_urls.admin_url), autocommit=True)
    yield conn
    await conn.close()


async def _notify(conn: psycopg.AsyncConnection[tuple[object]], channel: str, payload: str) -> None:
    await conn.execute("select pg_notify(%s, %s)", (channel, payload))


async def _listen_backends(conn: psycopg.AsyncConnection[tuple[object]]) -> list[int]:
    """The test process's server sessions (it opens no other than its listener)."""
    rows = await conn.execute(
        "select pid from pg_stat_activity where application_name = %s", (APP_NAME,)
    )
    return [int(str(r[0])) for r in await rows.fetchall()]


async def test_every_subscription_hears_its_channels_on_one_connection(
    process: Runtime, sender: psycopg.AsyncConnection[tuple[object]]
) -> None:
    heard: list[tuple[str, str]] = []
    first = Subscription({CHANNEL_A: lambda p: heard.append(("first", p))})
    # A second reader of the same channel (as the token cache and the device hub share one).
    second = Subscription(
        {CHANNEL_A: lambda p: heard.append(("second", p)), CHANNEL_B: lambda p: None}
    )
    found = listener(process)
    await found.ready(first)
    await found.ready(second)  # a channel added to the live connection
    await _notify(sender, CHANNEL_A, "one")
    await _notify(sender, "iiot_test_listen_other", "not ours")
    assert await found.sync() is True
    assert sorted(heard) == [("first", "one"), ("second", "one")]
    assert len(await _listen_backends(sender)) == 1


async def test_sync_returns_after_every_committed_notification_was_handled(
    process: Runtime, sender: psycopg.AsyncConnection[tuple[object]]
) -> None:
    heard: list[str] = []
    sub = Subscription({CHANNEL_A: heard.append})
    found = listener(process)
    await found.ready(sub)
    for n in range(50):
        await _notify(sender, CHANNEL_A, str(n))
    assert await found.sync() is True  # no sleep: the round trip orders them
    assert heard == [str(n) for n in range(50)]


async def test_a_lost_connection_resets_and_reconnects(
    process: Runtime, sender: psycopg.AsyncConnection[tuple[object]]
) -> None:
    heard: list[str] = []
    resets: list[bool] = []
    found: Listener = listener(process)
    sub = Subscription(
        {CHANNEL_A: heard.append, CHANNEL_B: heard.append},
        reset=lambda: resets.append(found.connected),
    )
    await found.ready(sub)
    assert resets == [True]  # once listening, before the first notification
    await found.sync()
    (pid,) = await _listen_backends(sender)
    await sender.execute("select pg_terminate_backend(%s)", (pid,))
    async with asyncio.timeout(10):
        while found.connected:
            await asyncio.sleep(0.01)
    assert await found.sync() is False  # not listening: caches must not be trusted
    await found.ready(sub, timeout=10)
    assert resets == [True, False, True]  # lost (forget), then listening again
    await _notify(sender, CHANNEL_A, "after")
    assert await found.sync() is True
    assert heard == ["after"]
    assert (await _listen_backends(sender)) != [pid]


async def test_the_last_subscription_closes_the_connection(
    process: Runtime, sender: psycopg.AsyncConnection[tuple[object]]
) -> None:
    one, two = Subscription({CHANNEL_B: lambda p: None}), Subscription({CHANNEL_A: print})
    found = listener(process)
    await found.ready(one)
    await found.ready(two)
    await found.remove(one)
    assert found.connected
    await found.remove(two)
    assert not found.connected
    async with asyncio.timeout(10):
        while await _listen_backends(sender):
            await asyncio.sleep(0.05)
