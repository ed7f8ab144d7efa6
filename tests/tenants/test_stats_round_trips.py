"""A stats or quotas request is one transaction: the caller is resolved in the transaction the
route reads in, and every usage figure and limit is read in one statement.

Counted on the application's engine with SQLAlchemy events, so a new query or a second
transaction on these paths fails here instead of slipping into the latency.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import event

from iiot.runtime import Runtime
from tests.fixtures.factories import Factory, World


@dataclass
class Traffic:
    transactions: int = 0
    commits: int = 0
    rollbacks: int = 0
    statements: list[str] = field(default_factory=list)


@contextmanager
def database_traffic(rt: Runtime) -> Iterator[Traffic]:
    seen = Traffic()
    engine = rt.db.engine.sync_engine

    def on_begin(conn: Any) -> None:
        seen.transactions += 1

    def on_commit(conn: Any) -> None:
        seen.commits += 1

    def on_rollback(conn: Any) -> None:
        seen.rollbacks += 1

    def on_statement(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.statements.append(statement)

    listeners = [
        ("begin", on_begin),
        ("commit", on_commit),
        ("rollback", on_rollback),
        ("before_cursor_execute", on_statement),
    ]
    for name, fn in listeners:
        event.listen(engine, name, fn)
    try:
        yield seen
    finally:
        for name, fn in listeners:
            event.remove(engine, name, fn)


@pytest.mark.parametrize("endpoint", ["stats", "quotas"])
async def test_a_members_read_is_one_transaction_of_three_statements(
    world: World, runtime: Runtime, endpoint: str
) -> None:
    client = world.a["viewer"].client
    url = f"/api/v1/tenants/{world.tenant_a.id}/{endpoint}"
    # Cold: the rate check's limits cache is empty; the caller's look-up fills it.
    runtime.rate.forget_limits()
    for _ in range(2):
        with database_traffic(runtime) as seen:
            r = await client.get(url)
        assert r.status_code == 200, r.text
        assert (seen.transactions, seen.commits, seen.rollbacks) == (1, 1, 0)
        # The tenant scope, the caller (user, membership, tenant), every figure and limit.
        assert len(seen.statements) == 3, seen.statements
        assert "app.tenant_id" in seen.statements[0]
        assert "iiot_user_memberships" in seen.statements[1]
        assert "tiers" in seen.statements[2]


async def test_a_refused_caller_costs_one_rolled_back_transaction(
    world: World, runtime: Runtime
) -> None:
    with database_traffic(runtime) as seen:
        r = await world.b_admin.client.get(f"/api/v1/tenants/{world.tenant_a.id}/stats")
    assert r.status_code == 404, r.text
    assert (seen.transactions, seen.commits, seen.rollbacks) == (1, 0, 1)
    assert len(seen.statements) == 2, seen.statements  # no figure was read


async def test_a_system_admin_reads_a_tenant_it_is_no_member_of(
    world: World, factory: Factory, runtime: Runtime
) -> None:
    other = await factory.tenant()
    with database_traffic(runtime) as seen:
        r = await world.system_admin.client.get(f"/api/v1/tenants/{other.id}/quotas")
    assert r.status_code == 200, r.text
    assert (seen.transactions, seen.commits, len(seen.statements)) == (1, 1, 3)
    assert r.json()["users"]["used"] == 0
