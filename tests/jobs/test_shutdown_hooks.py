"""Graceful stop: work already acknowledged is finished before the database closes."""

from __future__ import annotations

from iiot.app import MODULES
from iiot.jobs import scheduler
from iiot.modules import Hook, Module, Wiring
from iiot.runtime import Runtime


def test_the_rules_engine_drains_before_mail_waits() -> None:
    names = [hook.name for hook in Wiring.of(MODULES).shutdown]
    assert names.index("rules.engine") < names.index("mail.wait_idle")


async def test_a_failing_hook_does_not_stop_the_others(runtime: Runtime) -> None:
    ran: list[str] = []

    async def broken(rt: Runtime) -> None:
        ran.append("broken")
        raise RuntimeError("boom")

    async def after(rt: Runtime) -> None:
        ran.append("after")

    saved = runtime.wiring
    runtime.wiring = Wiring.of(
        [
            Module("a", shutdown=(Hook("broken", broken),)),
            Module("b", shutdown=(Hook("after", after),)),
        ]
    )
    try:
        await scheduler.run_shutdown_hooks(runtime)
    finally:
        runtime.wiring = saved
    assert ran == ["broken", "after"]
