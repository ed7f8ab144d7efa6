"""Graceful stop: work already acknowledged is finished before the database closes."""

from __future__ import annotations

from iiot.app import MODULES
from iiot.jobs import scheduler
from iiot.modules import Hook, Module, Wiring
from iiot.runtime import Runtime


async def test_shutdown_runs_in_reverse_module_order(runtime: Runtime) -> None:
    """Transports drain first, the rules engine before metering flushes and the outbox waits."""
    ran: list[str] = []

    def recorder(name: str) -> Hook:
        async def fn(rt: Runtime) -> None:
            ran.append(name)

        return Hook(name, fn)

    saved = runtime.wiring
    runtime.wiring = Wiring.of(
        [Module(m.name, shutdown=tuple(recorder(h.name) for h in m.shutdown)) for m in MODULES]
    )
    try:
        await scheduler.run_shutdown_hooks(runtime)
    finally:
        runtime.wiring = saved
    assert ran[0] == "mqtt-listeners"
    assert ran.index("rules.engine") < ran.index("usage-flush") < ran.index("outbox.wait_idle")


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
            Module("a", shutdown=(Hook("after", after),)),
            Module("b", shutdown=(Hook("broken", broken),)),
        ]
    )
    try:
        await scheduler.run_shutdown_hooks(runtime)
    finally:
        runtime.wiring = saved
    assert ran == ["broken", "after"]
