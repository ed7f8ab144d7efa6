"""Periodic background jobs. PostgreSQL advisory locks make each run happen in one process only.

Domains register a job with `register(name, interval_seconds, fn)`; `fn(runtime)` runs every
interval in the process that wins the job's advisory lock for that run.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import text

if TYPE_CHECKING:
    from iiot.runtime import Runtime

log = logging.getLogger(__name__)

JobFn = Callable[["Runtime"], Awaitable[object]]


@dataclass(frozen=True)
class Job:
    name: str
    interval_seconds: float
    fn: JobFn


JOBS: dict[str, Job] = {}
# Run once on a graceful stop, in registration order, before the database is closed: they
# finish work already acknowledged to clients (queued rule evaluations, mail, presence).
SHUTDOWN_HOOKS: dict[str, JobFn] = {}


def register(name: str, interval_seconds: float, fn: JobFn) -> None:
    JOBS[name] = Job(name, interval_seconds, fn)


def register_shutdown(name: str, fn: JobFn) -> None:
    SHUTDOWN_HOOKS[name] = fn


async def run_shutdown_hooks(rt: Runtime) -> None:
    for name, fn in SHUTDOWN_HOOKS.items():
        try:
            await fn(rt)
        except Exception:
            log.exception("shutdown hook %s failed", name)


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


async def _loop(rt: Runtime, job: Job) -> None:
    while True:
        try:
            await run_once(rt, job)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job %s failed", job.name)
        await asyncio.sleep(job.interval_seconds)


def start_all(rt: Runtime) -> list[asyncio.Task[None]]:
    return [asyncio.create_task(_loop(rt, job), name=f"job:{job.name}") for job in JOBS.values()]
