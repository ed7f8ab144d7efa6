"""Graceful stop: work already acknowledged is finished before the database closes."""

from __future__ import annotations

import iiot.mail.outbox  # noqa: F401 - registers its hook
import iiot.rules.engine  # noqa: F401 - registers its hook
from iiot.jobs import scheduler
from iiot.runtime import Runtime


def test_domains_register_their_shutdown_work() -> None:
    assert {"rules.engine", "mail.wait_idle"} <= set(scheduler.SHUTDOWN_HOOKS)


async def test_a_failing_hook_does_not_stop_the_others(runtime: Runtime) -> None:
    ran: list[str] = []

    async def broken(rt: Runtime) -> None:
        ran.append("broken")
        raise RuntimeError("boom")

    async def after(rt: Runtime) -> None:
        ran.append("after")

    saved = dict(scheduler.SHUTDOWN_HOOKS)
    scheduler.SHUTDOWN_HOOKS.clear()
    try:
        scheduler.register_shutdown("broken", broken)
        scheduler.register_shutdown("after", after)
        await scheduler.run_shutdown_hooks(runtime)
    finally:
        scheduler.SHUTDOWN_HOOKS.clear()
        scheduler.SHUTDOWN_HOOKS.update(saved)
    assert ran == ["broken", "after"]
