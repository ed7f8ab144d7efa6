"""Telemetry queries: raw pages, latest values, input validation and tenant isolation."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from iiot.models.devices import Device
from iiot.models.telemetry import TelemetryPoint, TelemetrySeries
from iiot.runtime import Runtime
from iiot.tenancy.context import system_context
from tests.fixtures.factories import World

PROBLEM = "application/problem+json"
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

Point = tuple[str, datetime, Any]


async def seed_device(rt: Runtime, tenant_id: uuid.UUID, name: str = "Press 1") -> uuid.UUID:
    ctx = system_context(tenant_id)
    async with rt.db.tenant(ctx) as session:
        device = Device(tenant_id=tenant_id, name=name)
        session.add(device)
        await session.flush()
        return device.id


async def seed_points(
    rt: Runtime,
    tenant_id: uuid.UUID,
    device_id: uuid.UUID,
    points: Iterable[Point],
    unit: str | None = None,
) -> None:
    """Write points straight through a tenant session (RLS applies), bypassing ingest rules."""
    points = list(points)
    ctx = system_context(tenant_id)
    async with rt.db.tenant(ctx) as session:
        keys = sorted({key for key, _, _ in points})
        await session.execute(
            insert(TelemetrySeries)
            .values([{"tenant_id": tenant_id, "device_id": device_id, "key": k} for k in keys])
            .on_conflict_do_nothing()
        )
        found = await session.execute(
            select(TelemetrySeries.key, TelemetrySeries.id).where(
                TelemetrySeries.tenant_id == tenant_id, TelemetrySeries.device_id == device_id
            )
        )
        series = {key: series_id for key, series_id in found}
        rows = []
        for key, ts, value in points:
            row: dict[str, Any] = {
                "tenant_id": tenant_id,
                "series_id": series[key],
                "ts": ts,
                "unit": unit,
                "value_num": None,
                "value_bool": None,
                "value_str": None,
            }
            if isinstance(value, bool):
                row["value_bool"] = value
            elif isinstance(value, str):
                row["value_str"] = value
            else:
                row["value_num"] = float(value)
            rows.append(row)
        for i in range(0, len(rows), 5000):
            await session.execute(insert(TelemetryPoint).values(rows[i : i + 5000]))


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def params(**kw: Any) -> dict[str, str]:
    return {k: iso(v) if isinstance(v, datetime) else str(v) for k, v in kw.items()}


# --- raw --------------------------------------------------------------------------------------


async def test_raw_is_newest_first_and_respects_the_half_open_range(
    runtime: Runtime, world: World
) -> None:
    dev = await seed_device(runtime, world.tenant_a.id)
    # Written out of order on purpose: the order of arrival must not matter.
    offsets = [5, 0, 9, 3, 7, 1, 8, 2, 6, 4]
    await seed_points(
        runtime, world.tenant_a.id, dev, [("temp", T0 + timedelta(seconds=s), s) for s in offsets]
    )
    r = await world.a["viewer"].client.get(
        "/api/v1/telemetry",
        params=params(
            device_id=dev,
            key="temp",
            start=T0 + timedelta(seconds=2),
            end=T0 + timedelta(seconds=8),
        ),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert [p["value"] for p in body["points"]] == [7.0, 6.0, 5.0, 4.0, 3.0, 2.0]
    assert body["points"][0]["ts"] == "2026-11-20T12:00:07Z"
    assert body["next_cursor"] is None
    assert body["start"] == "2026-11-20T12:00:02Z"


async def test_raw_cursor_pages_through_every_point_once(runtime: Runtime, world: World) -> None:
    dev = await seed_device(runtime, world.tenant_a.id)
    # Two keys share timestamps, so the cursor must break ties on the key.
    points = [(k, T0 + timedelta(seconds=s), s) for s in range(25) for k in ("a", "b")]
    await seed_points(runtime, world.tenant_a.id, dev, points)
    client = world.a["viewer"].client
    seen: list[tuple[str, str]] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = params(device_id=dev, start=T0, end=T0 + timedelta(minutes=1), limit=7)
        if cursor:
            query["cursor"] = cursor
        r = await client.get("/api/v1/telemetry", params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        pages += 1
        assert len(body["points"]) <= 7
        seen += [(p["ts"], p["key"]) for p in body["points"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 8  # 50 points / 7 per page
    assert len(seen) == len(set(seen)) == 50
    assert seen == sorted(seen, reverse=True)


async def test_raw_returns_booleans_strings_units(runtime: Runtime, world: World) -> None:
    dev = await seed_device(runtime, world.tenant_a.id)
    await seed_points(
        runtime,
        world.tenant_a.id,
        dev,
        [("running", T0, True), ("state", T0, "RUNNING"), ("temp", T0, 21.5)],
        unit="u",
    )
    r = await world.a["viewer"].client.get(
        "/api/v1/telemetry", params=params(device_id=dev, start=T0, end=T0 + timedelta(seconds=1))
    )
    assert r.status_code == 200, r.text
    values = {p["key"]: p["value"] for p in r.json()["points"]}
    assert values == {"running": True, "state": "RUNNING", "temp": 21.5}
    assert {p["unit"] for p in r.json()["points"]} == {"u"}


async def test_raw_rejects_bad_input_with_problems(runtime: Runtime, world: World) -> None:
    dev = await seed_device(runtime, world.tenant_a.id)
    client = world.a["viewer"].client
    cases = [
        params(device_id=dev, start=T0, end=T0),  # empty range
        params(device_id=dev, start=T0, end=T0 - timedelta(seconds=1)),  # reversed
        params(device_id=dev, start=T0 - timedelta(days=40), end=T0),  # too long
        params(device_id=dev, limit=10_001),
        params(device_id=dev, limit=0),
        params(device_id="not-a-uuid"),
        {"device_id": str(dev), "start": "2026-11-20T12:00:00"},  # no offset
        params(device_id=dev, key="k" * 256),
        {},  # device_id missing
    ]
    for query in cases:
        r = await client.get("/api/v1/telemetry", params=query)
        assert r.status_code == 422, (query, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)
    for cursor in ("%%%", "bm90LWpzb24", base64.urlsafe_b64encode(b'{"ts": 1}').decode()):
        r = await client.get("/api/v1/telemetry", params={"device_id": str(dev), "cursor": cursor})
        assert r.status_code == 400, (cursor, r.text)
        assert r.json()["code"] == "bad_request"


# --- latest -----------------------------------------------------------------------------------


async def test_latest_per_key_of_one_device(runtime: Runtime, world: World) -> None:
    dev = await seed_device(runtime, world.tenant_a.id)
    other = await seed_device(runtime, world.tenant_a.id, "Press 2")
    await seed_points(
        runtime,
        world.tenant_a.id,
        dev,
        [
            ("temp", T0 + timedelta(seconds=5), 5),
            ("temp", T0 + timedelta(seconds=9), 9),  # newest temp
            ("temp", T0 + timedelta(seconds=1), 1),
            ("state", T0 + timedelta(seconds=2), "IDLE"),
            ("state", T0 + timedelta(days=2), "RUNNING"),  # newest state, another partition
            ("on", T0, False),
        ],
    )
    await seed_points(runtime, world.tenant_a.id, other, [("temp", T0 + timedelta(days=3), 99)])
    r = await world.a["viewer"].client.get(
        "/api/v1/telemetry/latest", params={"device_id": str(dev)}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["device_id"] == str(dev)
    assert body["truncated"] is False
    latest = {v["key"]: (v["value"], v["ts"]) for v in body["values"]}
    assert latest == {
        "on": (False, "2026-11-20T12:00:00Z"),
        "state": ("RUNNING", "2026-11-22T12:00:00Z"),
        "temp": (9.0, "2026-11-20T12:00:09Z"),
    }


async def test_latest_for_the_whole_tenant_is_bounded(runtime: Runtime, world: World) -> None:
    devices = [await seed_device(runtime, world.tenant_a.id, f"D{i}") for i in range(3)]
    for i, dev in enumerate(devices):
        await seed_points(
            runtime,
            world.tenant_a.id,
            dev,
            [("k1", T0, i), ("k1", T0 + timedelta(seconds=1), 10 + i), ("k2", T0, 20 + i)],
        )
    b_dev = await seed_device(runtime, world.tenant_b.id, "Beta secret device")
    await seed_points(runtime, world.tenant_b.id, b_dev, [("k1", T0 + timedelta(days=1), 666)])

    client = world.a["viewer"].client
    r = await client.get("/api/v1/telemetry/latest")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["truncated"] is False
    got = {(v["device_id"], v["key"]): v["value"] for v in body["values"]}
    expected = {(str(d), "k1"): 10.0 + i for i, d in enumerate(devices)} | {
        (str(d), "k2"): 20.0 + i for i, d in enumerate(devices)
    }
    assert got == expected
    assert str(b_dev) not in r.text

    r = await client.get("/api/v1/telemetry/latest", params={"limit": 4})
    assert r.status_code == 200
    assert len(r.json()["values"]) == 4
    assert r.json()["truncated"] is True


# --- tenant isolation -------------------------------------------------------------------------


async def test_another_tenants_device_is_not_found_everywhere(
    runtime: Runtime, world: World
) -> None:
    b_dev = await seed_device(runtime, world.tenant_b.id, "Beta secret device")
    await seed_points(runtime, world.tenant_b.id, b_dev, [("temp", T0, 1234.5)])
    query = params(
        device_id=b_dev, key="temp", start=T0 - timedelta(hours=1), end=T0 + timedelta(hours=1)
    )
    for role, actor in world.a.items():
        for path, extra in (
            ("/api/v1/telemetry", {}),
            ("/api/v1/telemetry/latest", {}),
            ("/api/v1/telemetry/aggregate", {"interval": "1m"}),
            ("/api/v1/telemetry/statistics", {}),
        ):
            r = await actor.client.get(path, params=query | extra)
            assert r.status_code == 404, (role, path, r.text)
            assert r.headers["content-type"].startswith(PROBLEM)
            assert "1234.5" not in r.text
    # An unknown device answers exactly the same.
    r = await world.a["viewer"].client.get(
        "/api/v1/telemetry", params={"device_id": str(uuid.uuid4())}
    )
    assert r.status_code == 404
    # Tenant B itself sees its point.
    r = await world.b_admin.client.get("/api/v1/telemetry", params=query)
    assert r.status_code == 200
    assert r.json()["points"][0]["value"] == 1234.5


async def test_anonymous_is_refused(runtime: Runtime, world: World) -> None:
    dev = await seed_device(runtime, world.tenant_a.id)
    for path in ("/api/v1/telemetry", "/api/v1/telemetry/latest"):
        r = await world.anonymous.get(path, params={"device_id": str(dev)})
        assert r.status_code == 401
