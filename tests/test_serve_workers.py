"""`iiot serve --workers N`: the database is prepared once, then N processes serve."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest

from iiot.config import Settings
from iiot.db.setup import plain_url
from tests.fixtures.ports import free_port
from tests.test_cli import IIOT, External, _env, external  # noqa: F401 - the fixture

__all__ = ["external"]


def test_worker_count_defaults() -> None:
    dev = Settings(_env_file=None)  # type: ignore[call-arg]
    assert dev.worker_count() == 1
    assert dev.worker_count(3) == 3
    assert Settings(workers=2, _env_file=None).worker_count() == 2  # type: ignore[call-arg]


def test_serve_with_two_workers(external: External, tmp_path: Path) -> None:
    redis_url = os.environ.get("IIOT_TEST_REDIS_URL")
    if not redis_url:
        pytest.skip("no Redis (IIOT_TEST_REDIS_URL): several workers need it for shared limits")
    port = free_port()
    env = _env(
        tmp_path,
        IIOT_REDIS_URL=redis_url,
        IIOT_DATABASE_OWNER_URL=external.owner_url,
        IIOT_DATABASE_URL=external.app_url,
        IIOT_BOOTSTRAP_ADMIN_EMAIL="ops@example.com",
        IIOT_BOOTSTRAP_ADMIN_PASSWORD="a-long-enough-password",
        IIOT_RUN_BACKGROUND_JOBS="false",
    )
    server = subprocess.Popen(  # noqa: S603 - our own entry point
        [str(IIOT), "serve", "--workers", "2", "--port", str(port), "--no-access-log"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 90
        served = 0
        # A new connection per request (as separate clients would open), one TLS context.
        no_keepalive = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(timeout=2, limits=no_keepalive) as client:
            while served < 20:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline, "the workers did not answer in time"
                try:
                    r = client.get(f"http://127.0.0.1:{port}/health")
                    served += r.status_code == 200
                except httpx.TransportError:
                    time.sleep(0.3)
        workers = [
            p for p in psutil.Process(server.pid).children(recursive=True) if "python" in p.name()
        ]
        assert len(workers) >= 2
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    with psycopg.connect(plain_url(external.owner_url)) as conn:
        admins = conn.execute("select count(*) from users where is_system_admin").fetchone()
    assert admins == (1,)  # created once, by the parent, not raced by the workers
