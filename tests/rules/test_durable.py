"""Durable rule evaluation: an acknowledged batch is evaluated exactly once, even when the
process that acknowledged it is killed first; a batch that keeps failing is parked, visibly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from iiot.config import Settings
from iiot.db.setup import plain_url
from iiot.rules import engine as rules_engine
from iiot.rules import metrics
from iiot.runtime import Runtime
from tests.devices.support import make_device
from tests.fixtures.database import TestDatabase
from tests.fixtures.factories import Factory, World
from tests.fixtures.ports import free_port
from tests.rules.helpers import alerts, make_rule

IIOT = Path(sys.executable).parent / "iiot"


async def _count(owner: AsyncEngine, sql: str) -> int:
    async with owner.connect() as conn:
        return int((await conn.execute(text(sql))).scalar_one())


async def test_batch_acknowledged_then_sigkill_still_opens_the_alert_once(
    factory: Factory,
    world: World,
    runtime: Runtime,
    db_urls: TestDatabase,
    settings: Settings,
    owner_engine: AsyncEngine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dev = await make_device(factory, world.a["developer"])
    await make_rule(world.a["developer"])  # temperature > 80 opens an alert
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IIOT_")}
    env.update(
        IIOT_DATABASE_URL=db_urls.app_url,
        IIOT_DATABASE_OWNER_URL=db_urls.admin_url,
        IIOT_JWT_SECRET=settings.resolved_jwt_secret(),
        IIOT_RUN_BACKGROUND_JOBS="false",
        IIOT_DATA_DIR=str(tmp_path),
    )
    server = subprocess.Popen(  # noqa: S603 - our own entry point
        [str(IIOT), "serve", "--port", str(port), "--no-access-log"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    http = httpx.Client(timeout=1)  # one TLS context, not one per attempt
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None
            assert time.monotonic() < deadline
            try:
                if http.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        # Hold the tenant's evaluation lock, so that the server acknowledges the batch but
        # cannot evaluate it before it is killed.
        with psycopg.connect(plain_url(db_urls.admin_url)) as lock:
            lock.execute(
                "select pg_advisory_xact_lock(727276, hashtext(%s))", (str(world.tenant_a.id),)
            )
            r = http.post(
                f"{url}/api/v1/telemetry",
                headers={"X-API-Key": dev.token},
                json={"telemetry": {"temperature": 95.0}},
                timeout=10,
            )
            assert r.status_code == 201, r.text
            server.send_signal(signal.SIGKILL)
            server.wait(timeout=10)
            lock.rollback()
    finally:
        http.close()
        if server.poll() is None:
            server.kill()
            server.wait()
    assert await _count(owner_engine, "select count(*) from rule_batches") == 1
    assert await alerts(world.a["viewer"]) == []

    # Another process (this one) finds the batch with the engine's sweep and evaluates it.
    monkeypatch.setattr(rules_engine, "SWEEP_AFTER_SECONDS", 0.0)
    assert await rules_engine.sweep_queued_batches(runtime) == 1
    assert await _count(owner_engine, "select count(*) from rule_batches") == 0
    [alert] = await alerts(world.a["viewer"])
    assert alert["occurrence_count"] == 1
    assert alert["device_id"] == str(dev.id)
    # Evaluated exactly once: a second sweep finds nothing, the alert is unchanged.
    assert await rules_engine.sweep_queued_batches(runtime) == 0
    [again] = await alerts(world.a["viewer"])
    assert again["occurrence_count"] == 1


async def test_a_batch_that_keeps_failing_is_parked_and_listed(
    world: World, runtime: Runtime, owner_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_rule(world.a["developer"])
    monkeypatch.setattr(rules_engine, "SWEEP_AFTER_SECONDS", 0.0)
    async with owner_engine.begin() as conn:
        # A document the engine cannot read (no columns): every evaluation fails.
        await conn.execute(
            text("insert into rule_batches (tenant_id, points) values (:t, '{}')"),
            {"t": world.tenant_a.id},
        )
    parked_before = metrics.PARKED._value.get()
    for _ in range(rules_engine.MAX_ATTEMPTS):
        await rules_engine.sweep_queued_batches(runtime)
    assert metrics.PARKED._value.get() == parked_before + 1
    # Parked: no longer taken, still stored.
    assert await rules_engine.sweep_queued_batches(runtime) == 0
    assert await _count(owner_engine, "select count(*) from rule_batches") == 1
    r = await world.a["admin"].client.get("/api/v1/rules/parked-batches")
    assert r.status_code == 200, r.text
    [batch] = r.json()["batches"]
    assert batch["attempts"] == rules_engine.MAX_ATTEMPTS
    assert "KeyError" in batch["last_error"]
    assert batch["parked_at"] is not None
    # Another tenant sees none of it; a viewer may not look.
    r = await world.b_admin.client.get("/api/v1/rules/parked-batches")
    assert r.json()["batches"] == []
    r = await world.a["viewer"].client.get("/api/v1/rules/parked-batches")
    assert r.status_code == 403
