"""Tenant rate limits at their edge under concurrency, in memory and in Redis: API requests,
device messages (a gateway's sub-devices count each), points per second; the refusal's
problem and headers; exemptions; tier default, tenant override and null."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from iiot.quotas.ratelimit import RateLimiter
from iiot.runtime import Runtime
from tests.devices.support import make_device
from tests.fixtures.factories import Factory, World
from tests.scaleout.servers import redis_for_tests


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest, runtime: Runtime) -> AsyncIterator[str]:
    """The runtime's limiter on each backend (Redis only where a server answers)."""
    url = None
    if request.param == "redis":
        url = redis_for_tests()
        if url is None:
            pytest.skip("no Redis server: set IIOT_TEST_REDIS_URL or start redis-server")
    runtime.rate = RateLimiter(url)
    yield request.param
    await runtime.rate.close()


def _base_ms() -> int:
    return int((datetime.now(UTC) - timedelta(minutes=5)).timestamp() * 1000)


def _codes(results: list[Any]) -> Counter[int]:
    return Counter(r.status_code for r in results)


async def test_api_requests_per_minute_admits_exactly_the_limit_concurrently(
    factory: Factory, limiter: str
) -> None:
    tenant = await factory.tenant(api_requests_per_minute=10)
    viewer = await factory.member(tenant, "viewer")
    results = await asyncio.gather(*(viewer.client.get("/api/v1/devices") for _ in range(30)))
    assert _codes(results) == {200: 10, 429: 20}
    refused = next(r for r in results if r.status_code == 429)
    assert refused.headers["content-type"].startswith("application/problem+json")
    body = refused.json()
    assert body["code"] == "rate_limited"
    assert body["limit"] == "api_requests_per_minute"
    assert body["window"] == "60s"
    assert body["quota"] == 10
    assert 0 < body["retry_after"] <= 60
    assert refused.headers["retry-after"] == str(body["retry_after"])
    assert refused.headers["ratelimit-limit"] == "10"
    assert refused.headers["ratelimit-remaining"] == "0"
    assert refused.headers["ratelimit-reset"] == str(body["retry_after"])
    assert refused.headers["ratelimit-policy"] == "10;w=60"


async def test_members_and_api_keys_share_the_tenant_limit_and_admins_are_exempt(
    factory: Factory, world: World
) -> None:
    tenant = await factory.tenant(api_requests_per_minute=4)
    admin = await factory.member(tenant, "admin")
    r = await admin.client.post("/api/v1/api-keys", json={"name": "ci", "scopes": ["read"]})
    assert r.status_code == 201, r.text
    key = factory.client({"X-API-Key": r.json()["key"]})
    assert (await key.get("/api/v1/devices")).status_code == 200
    assert (await admin.client.get("/api/v1/auth/me")).status_code == 200  # any user route
    assert (await key.get("/api/v1/devices")).status_code == 200
    assert (await key.get("/api/v1/devices")).status_code == 429
    assert (await admin.client.get("/api/v1/devices")).status_code == 429
    # A system admin is never limited, in the tenant or elsewhere; nor are the probes.
    for _ in range(6):
        r = await world.system_admin.client.get(f"/api/v1/tenants/{tenant.id}/quotas")
        assert r.status_code == 200, r.text
        assert (await world.anonymous.get("/health")).status_code == 200
    # Another tenant is not affected.
    assert (await world.a["viewer"].client.get("/api/v1/devices")).status_code == 200


async def test_tier_default_tenant_override_and_null_in_quotas(
    factory: Factory, world: World, owner_engine: AsyncEngine, runtime: Runtime
) -> None:
    async with owner_engine.begin() as conn:
        await conn.execute(
            text(
                "update tiers set api_requests_per_minute = 3, "
                "max_device_messages_per_minute = null where name = 'starter'"
            )
        )
    tenant = await factory.tenant(tier="starter", max_points_per_second=7)
    viewer = await factory.member(tenant, "viewer")
    r = await viewer.client.get(f"/api/v1/tenants/{tenant.id}/quotas")
    assert r.status_code == 200, r.text
    assert r.json()["rate_limits"] == {
        "api_requests_per_minute": {"limit": 3, "window_seconds": 60},
        "max_device_messages_per_minute": {"limit": None, "window_seconds": 60},
        "max_points_per_second": {"limit": 7, "window_seconds": 10},
    }
    # The quotas read was the first of the tier's 3 requests.
    assert (await viewer.client.get("/api/v1/devices")).status_code == 200
    assert (await viewer.client.get("/api/v1/devices")).status_code == 200
    assert (await viewer.client.get("/api/v1/devices")).status_code == 429
    # A system admin overrides the tier for this tenant; null goes back to the tier.
    path = f"/api/v1/tenants/{tenant.id}"
    r = await world.system_admin.client.patch(path, json={"api_requests_per_minute": 100})
    assert r.status_code == 200, r.text
    assert r.json()["effective_limits"]["api_requests_per_minute"] == 100
    runtime.rate.forget_limits()  # the per-process cache keeps limits a few seconds
    assert (await viewer.client.get("/api/v1/devices")).status_code == 200
    r = await world.system_admin.client.patch(path, json={"api_requests_per_minute": None})
    assert r.json()["effective_limits"]["api_requests_per_minute"] == 3
    # An unlimited tier (enterprise) with no override: nothing is refused.
    free = await factory.tenant(tier="enterprise")
    member = await factory.member(free, "viewer")
    results = await asyncio.gather(*(member.client.get("/api/v1/devices") for _ in range(25)))
    assert _codes(results) == {200: 25}


async def test_points_per_second_admits_exactly_the_window_concurrently(
    factory: Factory, limiter: str
) -> None:
    tenant = await factory.tenant(max_points_per_second=5)  # 50 points per 10 s
    dev = await make_device(factory, await factory.member(tenant, "developer"))
    start = _base_ms()
    bodies = [
        {"points": [{"ts": start + 10 * i + j, "values": {"v": j}} for j in range(5)]}
        for i in range(20)
    ]
    results = await asyncio.gather(*(dev.client.post("/api/v1/telemetry", json=b) for b in bodies))
    assert _codes(results) == {201: 10, 429: 10}
    body = next(r for r in results if r.status_code == 429).json()
    assert body["limit"] == "max_points_per_second"
    assert body["window"] == "10s"
    assert body["quota"] == 50


async def test_device_messages_count_per_device_and_each_sub_device_of_a_batch(
    factory: Factory, limiter: str
) -> None:
    tenant = await factory.tenant(max_device_messages_per_minute=3)
    developer = await factory.member(tenant, "developer")
    gateway_a = await make_device(factory, developer)
    gateway_b = await make_device(factory, developer)
    start = _base_ms()

    def batch(n: int) -> dict[str, Any]:
        return {
            "points": [
                {"device_id": str(d.id), "ts": start + n, "values": {"v": n}}
                for d in (gateway_a, gateway_b)
            ]
        }

    results = await asyncio.gather(
        *(developer.client.post("/api/v1/telemetry", json=batch(n)) for n in range(6))
    )
    assert _codes(results) == {201: 3, 429: 3}
    # Both devices used their 3 messages: each is refused alone too.
    for dev in (gateway_a, gateway_b):
        r = await dev.client.post("/api/v1/telemetry", json={"telemetry": {"v": 1}})
        assert r.status_code == 429
        assert r.json()["limit"] == "max_device_messages_per_minute"
    # A refused message stored nothing.
    other = await make_device(factory, developer)
    r = await other.client.post("/api/v1/telemetry", json={"telemetry": {"v": 1}})
    assert r.status_code == 201, r.text


async def test_a_second_in_memory_process_on_the_database_refuses_to_start(
    runtime: Runtime, db_urls: Any
) -> None:
    from iiot.quotas.ratelimit import SharedStateRequired, claim_single_process

    first = Runtime.build(runtime.settings, db_urls.app_url)
    second = Runtime.build(runtime.settings, db_urls.app_url)
    held = await claim_single_process(first)
    try:
        assert held is not None
        with pytest.raises(SharedStateRequired, match="IIOT_REDIS_URL"):
            await claim_single_process(second)
    finally:
        if held is not None:
            await held.release()
        await first.db.dispose()
    # Released at its holder's stop: the next process may start.
    again = await claim_single_process(second)
    assert again is not None
    await again.release()
    await second.db.dispose()


def test_forwarded_for_is_read_from_the_right_and_only_from_trusted_proxies() -> None:
    from iiot.runtime import forwarded_client

    trusted = "10.0.0.0/8, 192.168.1.1"
    cases = [
        ("203.0.113.9", "1.1.1.1", trusted, "203.0.113.9"),  # peer not a proxy
        ("10.0.0.5", None, trusted, "10.0.0.5"),
        ("10.0.0.5", "198.51.100.4", trusted, "198.51.100.4"),
        ("10.0.0.5", "6.6.6.6, 198.51.100.4", trusted, "198.51.100.4"),  # spoofed left part
        ("10.0.0.5", "198.51.100.4, 192.168.1.1", trusted, "198.51.100.4"),  # proxy chain
        ("10.0.0.5", "10.1.1.1, 10.2.2.2", trusted, "10.1.1.1"),  # all trusted
        ("10.0.0.5", "not-an-ip, 10.2.2.2", trusted, "10.2.2.2"),
        ("10.0.0.5", "198.51.100.4", "", "10.0.0.5"),  # no proxy configured
    ]
    for peer, header, spec, expected in cases:
        assert forwarded_client(peer, header, spec) == expected, (peer, header)


def test_several_workers_without_redis_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from iiot import cli
    from iiot.config import get_settings
    from iiot.quotas.ratelimit import SharedStateRequired, require_shared_state

    require_shared_state(None, 1)
    require_shared_state("redis://127.0.0.1:6379/0", 4)
    with pytest.raises(SharedStateRequired, match="IIOT_REDIS_URL"):
        require_shared_state(None, 2)
    # `iiot serve --workers 2` without Redis stops before touching the database.
    monkeypatch.setenv("IIOT_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.delenv("IIOT_REDIS_URL", raising=False)
    monkeypatch.delenv("IIOT_WORKERS", raising=False)
    get_settings.cache_clear()
    try:
        done = CliRunner().invoke(cli.app, ["serve", "--workers", "2"])
    finally:
        get_settings.cache_clear()
    assert done.exit_code == 2
    assert "IIOT_REDIS_URL" in done.output


async def test_limits_of_an_unknown_tenant_do_not_fail(runtime: Runtime) -> None:
    from iiot.quotas.rates import check_device_message

    await check_device_message(runtime, uuid.uuid4(), uuid.uuid4())
