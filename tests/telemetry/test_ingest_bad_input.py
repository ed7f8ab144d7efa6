"""Bad ingest input: a clear 4xx problem and nothing written, never a 500."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.devices.support import DeviceHandle, make_device
from tests.fixtures.factories import Factory, World


async def stored(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("select count(*) from telemetry"))).scalar_one())


@pytest.fixture
async def device(factory: Factory, world: World) -> DeviceHandle:
    return await make_device(factory, world.a["developer"])


def now_iso(delta: timedelta = timedelta()) -> str:
    return (datetime.now(UTC) + delta).isoformat().replace("+00:00", "Z")


RAW_BODIES: list[tuple[str, bytes, int]] = [
    ("malformed", b'{"telemetry": {"t": 1', 400),
    ("lone surrogate", b'{"telemetry": {"t": "\\ud800"}}', 422),
    ("not json", b"temperature=5", 400),
    ("empty", b"", 400),
    ("nan literal", b'{"telemetry": {"t": NaN}}', 422),
    ("infinity literal", b'{"telemetry": {"t": Infinity}}', 422),
    ("negative infinity", b'{"telemetry": {"t": -Infinity}}', 422),
    ("overflowing number", b'{"telemetry": {"t": 1e999}}', 422),
]


@pytest.mark.parametrize(("name", "raw", "expected"), RAW_BODIES, ids=[b[0] for b in RAW_BODIES])
async def test_undecodable_bodies(
    device: DeviceHandle, owner_engine: AsyncEngine, name: str, raw: bytes, expected: int
) -> None:
    r = await device.client.post(
        "/api/v1/telemetry", content=raw, headers={"content-type": "application/json"}
    )
    assert r.status_code == expected, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert await stored(owner_engine) == 0


BAD_BODIES: list[tuple[str, Any]] = [
    ("array body", [1, 2]),
    ("no telemetry", {"values": {"t": 1}}),
    ("telemetry not object", {"telemetry": [1, 2]}),
    ("empty telemetry", {"telemetry": {}}),
    ("null value", {"telemetry": {"t": None}}),
    ("list value", {"telemetry": {"t": [1]}}),
    ("object without value", {"telemetry": {"t": {"unit": "C"}}}),
    ("object extra field", {"telemetry": {"t": {"value": 1, "colour": "red"}}}),
    ("unit not string", {"telemetry": {"t": {"value": 1, "unit": 5}}}),
    ("long string value", {"telemetry": {"t": "x" * 256}}),
    ("key too long", {"telemetry": {"k" * 256: 1}}),
    ("empty key", {"telemetry": {"": 1}}),
    ("NUL in key", {"telemetry": {"a\u0000b": 1}}),
    ("NUL in string", {"telemetry": {"a": "x\u0000"}}),
    ("NUL in unit", {"telemetry": {"a": {"value": 1, "unit": "\u0000"}}}),
    ("unknown field", {"telemetry": {"t": 1}, "extra": True}),
    ("bad timestamp", {"timestamp": "yesterday", "telemetry": {"t": 1}}),
    ("naive timestamp", {"timestamp": "2026-01-02T03:04:05", "telemetry": {"t": 1}}),
    ("bool timestamp", {"timestamp": True, "telemetry": {"t": 1}}),
    ("negative epoch", {"timestamp": -5, "telemetry": {"t": 1}}),
    # Computed when the test runs, not when it is collected.
    ("future", lambda: {"timestamp": now_iso(timedelta(minutes=11)), "telemetry": {"t": 1}}),
    (
        "beyond retention",
        lambda: {"timestamp": now_iso(-timedelta(days=91)), "telemetry": {"t": 1}},
    ),
    ("bad device id", {"device_id": "123", "telemetry": {"t": 1}}),
    ("points not list", {"points": {"a": 1}}),
    ("empty points", {"points": []}),
    ("point not object", {"points": [5]}),
    ("point extra field", {"points": [{"values": {"t": 1}, "x": 1}]}),
]


@pytest.mark.parametrize(("name", "body"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
async def test_invalid_bodies_are_refused(
    device: DeviceHandle, owner_engine: AsyncEngine, name: str, body: Any
) -> None:
    r = await device.client.post("/api/v1/telemetry", json=body() if callable(body) else body)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["code"] == "validation_error"
    assert problem["errors"]
    assert await stored(owner_engine) == 0


async def test_a_batch_is_all_or_nothing_and_lists_offending_points(
    device: DeviceHandle, owner_engine: AsyncEngine
) -> None:
    points: list[dict[str, Any]] = [{"values": {"ok": i}} for i in range(10)]
    points[3] = {"values": {"bad": [1]}}
    points[7] = {"ts": now_iso(timedelta(hours=1)), "values": {"ok": 1}}
    r = await device.client.post("/api/v1/telemetry", json={"points": points})
    assert r.status_code == 422
    problem = r.json()
    assert problem["invalid_points"] == [3, 7]
    assert {e["index"] for e in problem["errors"]} == {3, 7}
    assert all(e["reason"] for e in problem["errors"])
    assert await stored(owner_engine) == 0


async def test_more_than_10000_points_is_too_large(
    device: DeviceHandle, owner_engine: AsyncEngine
) -> None:
    points = [{"values": {"a": 1}} for _ in range(10_001)]
    r = await device.client.post("/api/v1/telemetry", json={"points": points})
    assert r.status_code == 413, r.text
    assert r.json()["code"] == "payload_too_large"
    assert await stored(owner_engine) == 0


async def test_10000_points_are_accepted(device: DeviceHandle, owner_engine: AsyncEngine) -> None:
    base = int(datetime.now(UTC).timestamp() * 1000) - 20_000
    points = [{"ts": base + i, "values": {"a": i}} for i in range(10_000)]
    r = await device.client.post("/api/v1/telemetry", json={"points": points})
    assert r.status_code == 201, r.text
    assert r.json()["points"] == 10_000
    assert await stored(owner_engine) == 10_000


async def test_body_over_5_mb_is_too_large(device: DeviceHandle, owner_engine: AsyncEngine) -> None:
    body = orjson.dumps({"telemetry": {f"k{i}": "x" * 200 for i in range(30_000)}})
    assert len(body) > 5 * 1024 * 1024
    r = await device.client.post(
        "/api/v1/telemetry", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    # Also without a Content-Length header (chunked upload).

    async def chunks():  # type: ignore[no-untyped-def]
        for i in range(0, len(body), 65536):
            yield body[i : i + 65536]

    r = await device.client.post(
        "/api/v1/telemetry", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    assert await stored(owner_engine) == 0


async def test_revoked_token_is_refused(
    factory: Factory, world: World, device: DeviceHandle, owner_engine: AsyncEngine
) -> None:
    r = await world.a["developer"].client.post(f"/api/v1/devices/{device.id}/credentials")
    assert r.status_code == 201
    refused = await device.client.post("/api/v1/telemetry", json={"telemetry": {"t": 1}})
    assert refused.status_code == 401
    assert await stored(owner_engine) == 0


async def test_suspended_tenant_cannot_ingest(
    factory: Factory, world: World, device: DeviceHandle, owner_engine: AsyncEngine
) -> None:
    from iiot.devices.token_cache import token_cache

    async with owner_engine.begin() as conn:
        await conn.execute(
            text("update tenants set status = 'suspended' where id = :t"), {"t": world.tenant_a.id}
        )
    token_cache(factory.rt).clear()
    r = await device.client.post("/api/v1/telemetry", json={"telemetry": {"t": 1}})
    assert r.status_code == 403
    assert r.json()["code"] == "tenant_suspended"
    assert await stored(owner_engine) == 0


async def test_suspension_applies_at_once_even_to_a_cached_token(
    factory: Factory, world: World, device: DeviceHandle, owner_engine: AsyncEngine
) -> None:
    ok = await device.client.post("/api/v1/telemetry", json={"telemetry": {"t": 1}})
    assert ok.status_code == 201  # the token is now cached in this process
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("update tenants set status = 'suspended' where id = :t"), {"t": world.tenant_a.id}
        )
    r = await device.client.post("/api/v1/telemetry", json={"telemetry": {"t": 2}})
    assert r.status_code in (401, 403), r.text
    assert await stored(owner_engine) == 1
