"""A stats or quotas request is one statement, sent alone as its own transaction: the caller
is resolved, the tenant set and the usage figures read in it.

Counted on the application's engine with SQLAlchemy events and on the database's one-statement
path with its statement observers, so a new query or a transaction of its own on these paths
fails here instead of slipping into the latency.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import event, func, select, text

from iiot.callers.repository import caller_reading, read_as_caller
from iiot.db.driver import DriverStatement
from iiot.db.session import Database
from iiot.models.users import Membership
from iiot.quotas import usage
from iiot.runtime import Runtime
from iiot.tenancy.context import system_context
from iiot.tenants import service
from iiot.tenants.schemas import TenantQuotas, TenantStats
from tests.fixtures.database import TestDatabase
from tests.fixtures.factories import Factory, World


@dataclass
class Traffic:
    transactions: int = 0
    commits: int = 0
    rollbacks: int = 0
    statements: list[str] = field(default_factory=list)
    # Whether each statement's connection was in autocommit (the statement its own transaction).
    autocommit: list[bool] = field(default_factory=list)


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
        seen.autocommit.append(bool(cursor.connection.autocommit))

    def on_driver_statement(statement: str, conn: Any) -> None:
        seen.statements.append(statement)
        seen.autocommit.append(bool(conn.autocommit))

    listeners = [
        ("begin", on_begin),
        ("commit", on_commit),
        ("rollback", on_rollback),
        ("before_cursor_execute", on_statement),
    ]
    for name, fn in listeners:
        event.listen(engine, name, fn)
    rt.db.statement_observers.append(on_driver_statement)
    try:
        yield seen
    finally:
        rt.db.statement_observers.remove(on_driver_statement)
        for name, fn in listeners:
            event.remove(engine, name, fn)


def _one_statement_alone(seen: Traffic) -> str:
    """The one statement of a request, which ran alone in autocommit (no BEGIN, no COMMIT)."""
    assert len(seen.statements) == 1, seen.statements
    assert seen.autocommit == [True]
    assert (seen.transactions, seen.commits, seen.rollbacks) == (0, 0, 0)
    return seen.statements[0]


@pytest.mark.parametrize("endpoint", ["stats", "quotas"])
async def test_a_members_read_is_one_statement_in_a_transaction_of_its_own(
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
        statement = _one_statement_alone(seen)
        # The caller (user, membership, tenant and its limits), the tenant scope, the figures.
        assert "iiot_user_memberships" in statement
        assert "tiers" in statement
        assert "set_config(" in statement
        assert "FROM devices" in statement
        # Only the figures the answer is made of: they differ widely in cost.
        read = service.STATS_FIGURES if endpoint == "stats" else service.QUOTA_FIGURES
        for name in service.STATS_FIGURES | service.QUOTA_FIGURES:
            assert (f" AS {name}" in statement) == (name in read), name


async def test_a_refused_caller_costs_one_statement(world: World, runtime: Runtime) -> None:
    with database_traffic(runtime) as seen:
        r = await world.b_admin.client.get(f"/api/v1/tenants/{world.tenant_a.id}/stats")
    assert r.status_code == 404, r.text
    _one_statement_alone(seen)


async def test_a_system_admin_reads_a_tenant_it_is_no_member_of(
    world: World, factory: Factory, runtime: Runtime
) -> None:
    other = await factory.tenant()
    with database_traffic(runtime) as seen:
        r = await world.system_admin.client.get(f"/api/v1/tenants/{other.id}/quotas")
    assert r.status_code == 200, r.text
    _one_statement_alone(seen)
    assert r.json()["users"]["used"] == 0


# --- the statement itself: row-level security, and nothing read for a refused caller ---------

# Tenant-owned values written WITHOUT a tenant filter: only row-level security keeps them to one
# tenant, so they show whether the tenant was set when they were read.
_UNFILTERED = {
    "memberships_seen": select(func.count()).select_from(Membership).scalar_subquery(),
    "tenant_setting": select(text("current_setting('app.tenant_id', true)")).scalar_subquery(),
}
_NO_PARAMETERS: frozenset[str] = frozenset()


async def test_values_are_read_with_the_tenant_set_and_row_level_security_in_force(
    world: World, runtime: Runtime
) -> None:
    reading = caller_reading(_UNFILTERED, _NO_PARAMETERS)
    viewer = world.a["viewer"]
    found, values = await read_as_caller(runtime.db, reading, viewer.user_id, world.tenant_a.id, {})
    assert found is not None
    assert found.is_active_member
    assert values is not None
    assert values["tenant_setting"] == str(world.tenant_a.id)
    # Tenant A's memberships (one per role), not B's admin's too, and not none at all.
    assert values["memberships_seen"] == len(world.a)


async def test_nothing_tenant_owned_is_read_for_a_caller_who_is_not_admitted(
    world: World, factory: Factory, runtime: Runtime
) -> None:
    reading = caller_reading(_UNFILTERED, _NO_PARAMETERS)
    suspended = await factory.tenant(status="suspended")
    member_of_suspended = await factory.member(suspended, "admin")
    for user_id, tenant_id in [
        (world.b_admin.user_id, world.tenant_a.id),  # another tenant's member
        (member_of_suspended.user_id, suspended.id),  # a suspended tenant's member
    ]:
        found, values = await read_as_caller(runtime.db, reading, user_id, tenant_id, {})
        assert found is not None
        assert values is None
    # A system admin is admitted to any existing tenant, suspended or not.
    found, values = await read_as_caller(
        runtime.db, reading, world.system_admin.user_id, suspended.id, {}
    )
    assert values is not None
    assert values["tenant_setting"] == str(suspended.id)


async def test_the_tenant_setting_ends_with_the_statement(
    world: World, db_urls: TestDatabase
) -> None:
    """The statement is its own transaction: the pooled connection it ran on (the only one of
    this pool) answers the next statement with no tenant set."""
    db = Database(db_urls.app_url, pool_size=1)
    try:
        reading = caller_reading(_UNFILTERED, _NO_PARAMETERS)
        viewer = world.a["viewer"]
        _, values = await read_as_caller(db, reading, viewer.user_id, world.tenant_a.id, {})
        assert values is not None
        assert values["tenant_setting"] == str(world.tenant_a.id)
        after = DriverStatement.compile(
            select(text("current_setting('app.tenant_id', true)")), frozenset()
        )
        row = await db.one_row(after, {})
        assert row is not None
        assert row[0] in (None, "")
    finally:
        await db.dispose()


async def test_the_usage_figures_match_the_session_read(world: World, runtime: Runtime) -> None:
    """The figures of the one statement are those the tenant session's statement reads."""
    providers = tuple(runtime.wiring.usage_providers)
    now = datetime.now(UTC)
    wanted = usage.tenant_values(providers, service.STATS_FIGURES | service.QUOTA_FIGURES)
    reading = caller_reading(wanted.columns, wanted.parameters)
    found, values = await read_as_caller(
        runtime.db, reading, world.a["admin"].user_id, world.tenant_a.id, usage.values_at(now)
    )
    assert found is not None
    assert values is not None
    ctx = system_context(world.tenant_a.id)
    async with runtime.db.tenant(ctx) as session:
        limits, figures = await usage.read(providers, session, ctx)
    assert values == figures
    assert found.limits == limits


@pytest.mark.parametrize(("endpoint", "model"), [("stats", TenantStats), ("quotas", TenantQuotas)])
async def test_the_answer_is_the_documented_model(
    world: World, app: FastAPI, endpoint: str, model: type[BaseModel]
) -> None:
    """Rendered by pydantic-core directly, the answer is still exactly its response model."""
    path = f"/api/v1/tenants/{{id}}/{endpoint}"
    r = await world.a["viewer"].client.get(path.replace("{id}", str(world.tenant_a.id)))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json() == model.model_validate_json(r.content).model_dump(mode="json")
    documented = app.openapi()["paths"][path]["get"]["responses"]["200"]["content"]
    assert documented["application/json"]["schema"] == {
        "$ref": f"#/components/schemas/{model.__name__}"
    }
