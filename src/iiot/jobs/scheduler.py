"""Periodic background jobs. PostgreSQL advisory locks make each run happen in one process only.

The jobs, start-up and shutdown hooks are those of the modules the runtime runs
(`rt.wiring`); `fn(runtime)` of a job runs every interval in the process that wins the job's
advisory lock for that run.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from typing import TYPE_CHECKING

from sqlalchemy import text

from iiot.db.outage import is_database_unavailable, outage_log
from iiot.modules import Job

if TYPE_CHECKING:
    from iiot.runtime import Runtime

log = logging.getLogger(__name__)


async def run_startup_hooks(rt: Runtime) -> None:
    """Start-up hooks in module order; a failing one stops the start (it raises)."""
    for hook in rt.wiring.startup:
        await hook.fn(rt)


async def run_shutdown_hooks(rt: Runtime) -> None:
    """Shutdown hooks in reverse module order (a module stops before those it builds on),
    before the database is closed: they finish work already acknowledged to clients (in-flight
    MQTT messages, queued rule evaluations, usage counts, mail, presence)."""
    for hook in reversed(rt.wiring.shutdown):
        try:
            await hook.fn(rt)
        except Exception:
            log.exception("shutdown hook %s failed", hook.name)


def _lock_key(name: str) -> int:
    return zlib.crc32(f"iiot.job.{name}".encode())


async def run_once(rt: Runtime, job: Job) -> bool:
    """Run `job` if no other process is running it; True when it ran here."""
    async with rt.db.session_engine.connect() as conn:
        got = await conn.scalar(text("select pg_try_advisory_lock(:k)"), {"k": _lock_key(job.name)})
        await conn.commit()
        if not got:
            return False
        try:
            await job.fn(rt)
        finally:
            await conn.execute(text("select pg_advisory_unlock(:k)"), {"k": _lock_key(job.name)})
            await conn.commit()
    return True


async def _loop(rt: Runtime, job: Job, turn: asyncio.Semaphore) -> None:
    while True:
        try:
            async with turn:
                await run_once(rt, job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if is_database_unavailable(exc):
                outage_log(rt).report(exc)
            else:
                log.exception("job %s failed", job.name)
        await asyncio.sleep(job.interval_seconds)


def start_all(rt: Runtime) -> list[asyncio.Task[None]]:
    """A task per job. A run holds a connection for its lock while its work takes others from
    the same pool: a process runs at most a quarter of its pool size of them at once (at least
    one). Every job starting at once used to take every connection of a small pool, each
    waiting for a second one: no job ran, and requests waited for the pool's timeout."""
    turn = asyncio.Semaphore(max(1, rt.settings.database_pool_size // 4))
    return [
        asyncio.create_task(_loop(rt, job, turn), name=f"job:{job.name}") for job in rt.wiring.jobs
    ]
