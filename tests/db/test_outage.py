"""PostgreSQL stopped under load: 503 `database_unavailable`, never 500, one log line, and
recovery without a restart once it is back.

The test runs its own embedded PostgreSQL (not the session's database), so that it can stop
and start it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from iiot import bootstrap
from iiot.app import MODULES, create_app
from iiot.config import Settings
from iiot.db import migrate, setup
from iiot.db.embedded import start_embedded
from iiot.runtime import Runtime
from tests.fixtures.database import stopped

EMAIL, PASSWORD = "outage-admin@example.com", "outage-password-1234"


def _stop(pgdata: Path, how: signal.Signals = signal.SIGINT) -> None:
    """Stop the server: by default a fast shutdown (open connections are terminated, a
    checkpoint is written); SIGQUIT is the immediate shutdown, for a server thrown away."""
    pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    os.kill(pid, how)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if stopped(pid):
            return
        time.sleep(0.02)
    raise AssertionError("PostgreSQL did not stop")


async def _until(condition: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest.fixture
def pg_dir() -> Iterator[Path]:
    # Under /tmp like the session's embedded server: PostgreSQL runs as its own user there.
    path = Path(tempfile.mkdtemp(prefix="iiot-outage-", dir="/tmp"))
    yield path
    if (path / "pg" / "postmaster.pid").exists():
        _stop(path / "pg", signal.SIGQUIT)  # its data is removed next: no checkpoint
    shutil.rmtree(path, ignore_errors=True)


async def test_database_outage_answers_503_and_recovers(
    pg_dir: Path, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    server = start_embedded(pg_dir)
    pgdata = pg_dir / "pg"
    setup.ensure_database(server.url("postgres", "postgres"), "iiot")
    owner_url = server.url("postgres", "iiot")
    setup.ensure_app_role(owner_url, "iiot_app")
    migrate.upgrade(owner_url, "iiot_app")
    own = settings.model_copy(
        update={"bootstrap_admin_email": EMAIL, "bootstrap_admin_password": PASSWORD}
    )
    rt = Runtime.build(own, server.url("iiot_app", "iiot"), MODULES)
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(runtime=rt)), base_url="http://test"
    )
    try:
        await bootstrap.ensure_bootstrap_admin(rt)
        login = await client.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
        assert login.status_code == 200, login.text
        client.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        assert (await client.get("/api/v1/tenants")).status_code == 200

        statuses: Counter[int] = Counter()
        problems: list[httpx.Response] = []
        stop = asyncio.Event()

        async def load() -> None:
            while not stop.is_set():
                r = await client.get("/api/v1/tenants")
                statuses[r.status_code] += 1
                if r.status_code == 503:
                    problems.append(r)
                await asyncio.sleep(0.005)

        caplog.clear()
        with caplog.at_level(logging.INFO):
            workers = [asyncio.create_task(load()) for _ in range(4)]
            await _until(lambda: statuses[200] >= 8)  # the load is flowing
            await asyncio.to_thread(_stop, pgdata)
            await _until(lambda: statuses[503] >= 40)  # many requests meet the outage
            stop.set()
            await asyncio.gather(*workers)

        assert statuses[503] > 0, statuses
        assert set(statuses) <= {200, 503}, statuses
        body = problems[-1].json()
        assert body["code"] == "database_unavailable"
        assert problems[-1].headers["content-type"].startswith("application/problem+json")
        assert int(problems[-1].headers["Retry-After"]) > 0
        outage_lines = [r for r in caplog.records if "database unavailable" in r.getMessage()]
        assert len(outage_lines) == 1, [r.getMessage() for r in outage_lines]
        assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"

        # The same server and data directory start again: PostgreSQL is back.
        await asyncio.to_thread(server.handle.ensure_postgres_running)
        deadline = time.monotonic() + 15
        while True:
            r = await client.get("/api/v1/tenants")
            if r.status_code == 200:
                break
            assert r.status_code == 503, r.text
            assert time.monotonic() < deadline, "the server did not recover"
            await asyncio.sleep(0.1)
        assert r.json()["total"] >= 1
    finally:
        await client.aclose()
        await rt.db.dispose()
