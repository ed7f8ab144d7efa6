"""A group of concurrent small requests is written by one statement: each request judged on
its own, duplicates across the group counted once, the group not falling back needlessly."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from psycopg import AsyncConnection
from sqlalchemy.ext.asyncio import AsyncEngine

from iiot.telemetry.repository import TelemetryWriter
from tests.devices.support import make_device
from tests.fixtures.factories import Factory
from tests.telemetry.test_ingest_quota import base_ms, figures


def record_groups(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, bool]]:
    """(size, written as a group) of every group the writer was given."""
    seen: list[tuple[int, bool]] = []
    original = TelemetryWriter.write_group

    async def recording(self: TelemetryWriter, items: list[Any]) -> Any:
        try:
            outcomes = await original(self, items)
        except Exception:
            seen.append((len(items), False))
            raise
        seen.append((len(items), outcomes is not None))
        return outcomes

    monkeypatch.setattr(TelemetryWriter, "write_group", recording)
    return seen


async def test_a_group_with_duplicates_across_requests_is_written_whole(
    factory: Factory, owner_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    groups = record_groups(monkeypatch)
    tenant = await factory.tenant(tier="enterprise")
    developer = await factory.member(tenant, "developer")
    devs = [await make_device(factory, developer) for _ in range(2)]
    start = base_ms()
    # Every point is sent twice (same device, key and timestamp) by concurrent requests.
    calls = [
        devs[i % 2].client.post(
            "/api/v1/telemetry", json={"timestamp": start + i // 4, "telemetry": {"v": i // 4}}
        )
        for i in range(48)
    ]
    results = await asyncio.gather(*calls)
    assert all(r.status_code == 201 for r in results), [r.text for r in results]
    answers = [(r.json()["points"], r.json()["duplicates"]) for r in results]
    assert sorted(answers) == [(0, 1)] * 24 + [(1, 0)] * 24
    assert await figures(owner_engine, tenant.id) == (24, 24)
    assert any(size > 1 for size, _ in groups)
    assert all(whole for _, whole in groups), groups


async def test_a_member_naming_an_unknown_device_is_refused_inside_the_group(
    factory: Factory, owner_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    groups = record_groups(monkeypatch)
    tenant = await factory.tenant(tier="enterprise")
    developer = await factory.member(tenant, "developer")
    dev = await make_device(factory, developer)
    other = await make_device(factory, developer)
    unknown = "00000000-0000-4000-8000-000000000001"
    start = base_ms()
    calls = []
    for i in range(30):
        device_id = unknown if i % 5 == 0 else str(other.id if i % 2 else dev.id)
        body = {"device_id": device_id, "timestamp": start + i, "telemetry": {"v": i}}
        calls.append(developer.client.post("/api/v1/telemetry", json=body))
    results = await asyncio.gather(*calls)
    for i, r in enumerate(results):
        assert r.status_code == (404 if i % 5 == 0 else 201), r.text
    assert await figures(owner_engine, tenant.id) == (24, 24)
    assert any(size > 1 for size, _ in groups)
    assert all(whole for _, whole in groups), groups


async def test_a_failing_group_statement_falls_back_and_leaves_its_connection_usable(
    factory: Factory, owner_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When a group's transaction meets an error it is rolled back, its requests are written
    one by one (each answered 201, each point stored and counted once), and the pooled
    connections serve the next groups whole."""
    from iiot.telemetry import repository

    groups = record_groups(monkeypatch)
    tenant = await factory.tenant(tier="enterprise")
    developer = await factory.member(tenant, "developer")
    devs = [await make_device(factory, developer) for _ in range(4)]
    start = base_ms()

    async def send(first: int, count: int) -> list[int]:
        calls = [
            devs[i % 4].client.post(
                "/api/v1/telemetry", json={"timestamp": start + i, "telemetry": {"v": i}}
            )
            for i in range(first, first + count)
        ]
        return [r.status_code for r in await asyncio.gather(*calls)]

    write_group_statement = repository._write_tenant_group

    async def failing(
        conn: AsyncConnection[Any], tenant_id: Any, items: list[Any], *rest: Any
    ) -> Any:
        """The group's transaction meets an error (a lone request's statement is left to
        succeed: its error would be its own answer)."""
        if len(items) > 1:
            await (await conn.execute("select 1 / 0")).fetchall()
        return await write_group_statement(conn, tenant_id, items, *rest)

    monkeypatch.setattr(repository, "_write_tenant_group", failing)
    assert await send(0, 24) == [201] * 24
    failed = [size for size, whole in groups if not whole]
    assert max(failed, default=0) > 1, groups
    monkeypatch.undo()
    groups = record_groups(monkeypatch)
    assert await send(24, 24) == [201] * 24
    assert any(size > 1 for size, _ in groups)
    assert all(whole for _, whole in groups), groups
    assert await figures(owner_engine, tenant.id) == (48, 48)
