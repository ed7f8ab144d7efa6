"""Background jobs share the process's connection pool with the requests it serves."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import text

from iiot.config import Settings
from iiot.jobs import scheduler
from iiot.modules import Job, Module
from iiot.runtime import Runtime
from tests.fixtures.database import TestDatabase

JOBS = 13  # as many as the application runs


async def test_jobs_starting_at_once_leave_connections_for_requests(
    db_urls: TestDatabase, settings: Settings
) -> None:
    """With a small pool, every job starting at once used to hold a connection for its lock
    and wait for a second one for its work: the pool ran dry and requests waited for the
    pool's timeout (30 s). Jobs now take turns (a quarter of the pool size at once: one here),
    so a request is served at once, and every job still runs."""
    ran: list[str] = []
    running = 0
    most = 0

    def job(name: str) -> Job:
        async def work(rt: Runtime) -> None:
            nonlocal running, most
            running += 1
            most = max(most, running)
            try:
                async with rt.db.system() as session:  # the job's work takes a connection
                    await session.execute(text("select pg_sleep(0.05)"))
                ran.append(name)
            finally:
                running -= 1

        return Job(name, 3600, work)

    small = settings.model_copy(update={"database_pool_size": 4})
    rt = Runtime.build(
        small, db_urls.app_url, [Module("jobs", jobs=tuple(job(f"j{i}") for i in range(JOBS)))]
    )
    tasks = scheduler.start_all(rt)
    try:
        started = time.monotonic()
        async with rt.db.system() as session:
            assert (await session.execute(text("select 1"))).scalar_one() == 1
        assert time.monotonic() - started < 5
        deadline = time.monotonic() + 30
        while len(ran) < JOBS and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert sorted(ran) == sorted(f"j{i}" for i in range(JOBS))
        assert most == 1
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await rt.db.dispose()
