"""A tenant's limits are looked up once when many requests find the cached entry expired at
the same moment, and every one of them gets the same limits."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event

from iiot.quotas import rates
from iiot.runtime import Runtime
from tests.fixtures.factories import Factory


async def test_concurrent_misses_share_one_look_up(factory: Factory, runtime: Runtime) -> None:
    tenant = await factory.tenant(max_telemetry_points_per_day=1234)
    runtime.rate.forget_limits()
    statements: list[str] = []

    def on_statement(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine = runtime.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", on_statement)
    try:
        found = await asyncio.gather(*(rates.tenant_limits(runtime, tenant.id) for _ in range(20)))
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
    assert {limits.max_telemetry_points_per_day for limits in found} == {1234}
    assert len([s for s in statements if "tiers" in s]) == 1, statements
    # Cached now: no further look-up.
    statements.clear()
    assert (await rates.tenant_limits(runtime, tenant.id)).max_telemetry_points_per_day == 1234
    assert statements == []
