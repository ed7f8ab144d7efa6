"""The daily points quota: counted with the write, exact under concurrency."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.devices.support import make_device
from tests.fixtures.factories import Factory


async def figures(engine: AsyncEngine, tenant_id: object) -> tuple[int, int]:
    async with engine.connect() as conn:
        points = (
            await conn.execute(
                text("select count(*) from telemetry where tenant_id = :t"), {"t": tenant_id}
            )
        ).scalar_one()
        counted = (
            await conn.execute(
                text(
                    "select coalesce(sum(telemetry_points), 0) from tenant_usage_daily "
                    "where tenant_id = :t"
                ),
                {"t": tenant_id},
            )
        ).scalar_one()
    return int(points), int(counted)


def batch(start_ms: int, n: int, key: str = "v") -> dict[str, object]:
    return {"points": [{"ts": start_ms + i, "values": {key: i}} for i in range(n)]}


def base_ms() -> int:
    return int((datetime.now(UTC) - timedelta(minutes=5)).timestamp() * 1000)


async def test_batch_crossing_the_limit_is_refused_whole(
    factory: Factory, owner_engine: AsyncEngine
) -> None:
    tenant = await factory.tenant(max_telemetry_points_per_day=100)
    dev = await make_device(factory, await factory.member(tenant, "developer"))
    start = base_ms()
    assert (await dev.client.post("/api/v1/telemetry", json=batch(start, 95))).status_code == 201
    r = await dev.client.post("/api/v1/telemetry", json=batch(start + 1000, 10))
    assert r.status_code == 429, r.text
    problem = r.json()
    assert problem["code"] == "quota_exceeded"
    assert problem["quota_type"] == "telemetry_points_per_day"
    assert problem["limit"] == 100
    assert problem["current"] == 95
    now = datetime.now(UTC)
    midnight = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
    retry = int(r.headers["Retry-After"])
    assert abs(retry - (midnight - now).total_seconds()) < 5
    assert problem["retry_after"] == retry
    assert await figures(owner_engine, tenant.id) == (95, 95)
    # Re-sending stored points costs nothing: duplicates are not counted.
    again = await dev.client.post("/api/v1/telemetry", json=batch(start, 95))
    assert again.status_code == 201
    assert again.json() == {"points": 0, "duplicates": 95}
    # Exactly up to the limit is fine; one more is not.
    assert (
        await dev.client.post("/api/v1/telemetry", json=batch(start + 1000, 5))
    ).status_code == 201
    one = await dev.client.post("/api/v1/telemetry", json=batch(start + 2000, 1))
    assert one.status_code == 429
    assert await figures(owner_engine, tenant.id) == (100, 100)


async def test_a_single_batch_larger_than_the_limit_is_refused(
    factory: Factory, owner_engine: AsyncEngine
) -> None:
    tenant = await factory.tenant(max_telemetry_points_per_day=10)
    dev = await make_device(factory, await factory.member(tenant, "developer"))
    r = await dev.client.post("/api/v1/telemetry", json=batch(base_ms(), 11))
    assert r.status_code == 429
    assert await figures(owner_engine, tenant.id) == (0, 0)


async def test_no_overshoot_under_concurrent_batches(
    factory: Factory, owner_engine: AsyncEngine
) -> None:
    limit = 1_000
    tenant = await factory.tenant(max_telemetry_points_per_day=limit)
    developer = await factory.member(tenant, "developer")
    devices = [await make_device(factory, developer) for _ in range(4)]
    start = base_ms()
    # 40 batches of 70 points = 2,800 points against a limit of 1,000: 14 fit (980).
    requests = [
        devices[i % 4].client.post("/api/v1/telemetry", json=batch(start + i * 1000, 70))
        for i in range(40)
    ]
    results = await asyncio.gather(*requests)
    accepted = [r for r in results if r.status_code == 201]
    refused = [r for r in results if r.status_code == 429]
    assert len(accepted) + len(refused) == 40, [r.text for r in results if r.status_code >= 500]
    assert len(accepted) == limit // 70
    assert all(r.json()["quota_type"] == "telemetry_points_per_day" for r in refused)
    points, counted = await figures(owner_engine, tenant.id)
    assert points == counted == len(accepted) * 70
    # A final batch that fits exactly brings the counter to the limit, never past it.
    last = await devices[0].client.post(
        "/api/v1/telemetry", json=batch(start + 100_000, limit - points)
    )
    assert last.status_code == 201
    assert await figures(owner_engine, tenant.id) == (limit, limit)


async def test_exactly_the_limit_under_concurrent_single_points(
    factory: Factory, owner_engine: AsyncEngine
) -> None:
    limit = 25
    tenant = await factory.tenant(max_telemetry_points_per_day=limit)
    dev = await make_device(factory, await factory.member(tenant, "developer"))
    start = base_ms()
    results = await asyncio.gather(
        *(
            dev.client.post(
                "/api/v1/telemetry", json={"timestamp": start + i, "telemetry": {"v": i}}
            )
            for i in range(60)
        )
    )
    assert sorted({r.status_code for r in results}) == [201, 429]
    assert sum(r.status_code == 201 for r in results) == limit
    assert await figures(owner_engine, tenant.id) == (limit, limit)


async def test_unlimited_tier_counts_without_refusing(
    factory: Factory, owner_engine: AsyncEngine
) -> None:
    tenant = await factory.tenant(tier="enterprise")
    dev = await make_device(factory, await factory.member(tenant, "developer"))
    r = await dev.client.post("/api/v1/telemetry", json=batch(base_ms(), 500))
    assert r.status_code == 201
    assert await figures(owner_engine, tenant.id) == (500, 500)


async def test_grouped_requests_fail_only_where_they_concern(
    factory: Factory, owner_engine: AsyncEngine
) -> None:
    """Concurrent small requests share transactions; a bad one fails alone."""
    tenant = await factory.tenant(tier="enterprise")
    developer = await factory.member(tenant, "developer")
    good = [await make_device(factory, developer) for _ in range(3)]
    revoked = await make_device(factory, developer)
    r = await developer.client.post(f"/api/v1/devices/{revoked.id}/credentials")
    assert r.status_code == 201
    start = base_ms()
    calls = []
    for i in range(40):
        dev = revoked if i % 4 == 0 else good[i % 3]
        calls.append(
            dev.client.post(
                "/api/v1/telemetry", json={"timestamp": start + i, "telemetry": {"v": i}}
            )
        )
    results = await asyncio.gather(*calls)
    for i, res in enumerate(results):
        assert res.status_code == (401 if i % 4 == 0 else 201), res.text
    assert await figures(owner_engine, tenant.id) == (30, 30)


async def test_concurrent_single_points_share_commits(
    factory: Factory, owner_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from iiot.telemetry.repository import TelemetryWriter

    sizes: list[int] = []
    original = TelemetryWriter.write_group

    async def recording(self: TelemetryWriter, items: list[Any]) -> Any:
        sizes.append(len(items))
        return await original(self, items)

    monkeypatch.setattr(TelemetryWriter, "write_group", recording)
    tenant = await factory.tenant(tier="enterprise")
    dev = await make_device(factory, await factory.member(tenant, "developer"))
    start = base_ms()
    results = await asyncio.gather(
        *(
            dev.client.post(
                "/api/v1/telemetry", json={"timestamp": start + i, "telemetry": {"v": i}}
            )
            for i in range(40)
        )
    )
    assert all(r.status_code == 201 for r in results)
    assert sum(sizes) == 40
    assert max(sizes) > 1  # at least one commit carried several requests
    assert await figures(owner_engine, tenant.id) == (40, 40)


async def test_merged_group_counts_duplicates_per_request_and_keeps_the_quota_exact(
    factory: Factory, owner_engine: AsyncEngine
) -> None:
    tenant = await factory.tenant(max_telemetry_points_per_day=30)
    developer = await factory.member(tenant, "developer")
    devs = [await make_device(factory, developer) for _ in range(3)]
    start = base_ms()
    first = await devs[0].client.post("/api/v1/telemetry", json=batch(start, 5))
    assert first.status_code == 201
    # Concurrent requests, one of them a full duplicate and one partly.
    bodies = [
        (devs[0], batch(start, 5)),
        (devs[0], batch(start + 3, 4)),
        (devs[1], batch(start, 6)),
        (devs[2], batch(start, 6)),
    ]
    results = await asyncio.gather(*(d.client.post("/api/v1/telemetry", json=b) for d, b in bodies))
    answers = [(r.status_code, r.json().get("points"), r.json().get("duplicates")) for r in results]
    assert answers == [(201, 0, 5), (201, 2, 2), (201, 6, 0), (201, 6, 0)]
    assert await figures(owner_engine, tenant.id) == (19, 19)
    # 11 left: concurrent requests of 6 points each; exactly one fits, the other is refused.
    more = await asyncio.gather(
        devs[1].client.post("/api/v1/telemetry", json=batch(start + 100, 6)),
        devs[2].client.post("/api/v1/telemetry", json=batch(start + 100, 6)),
    )
    assert sorted(r.status_code for r in more) == [201, 429]
    assert await figures(owner_engine, tenant.id) == (25, 25)
