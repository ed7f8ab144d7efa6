"""Usage metering: counted in memory, exact in the report after a flush, per day and month,
with the top devices by points."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from iiot.metering.meter import usage_meter
from iiot.runtime import Runtime
from tests.devices.support import make_device
from tests.fixtures.factories import Factory, World
from tests.rules.helpers import make_rule, settle

_BASE_MS = int((datetime.now(UTC) - timedelta(minutes=5)).timestamp() * 1000)


def _ms(offset: int) -> int:
    return _BASE_MS + offset


async def test_usage_is_exact_after_a_flush(
    factory: Factory, world: World, runtime: Runtime, owner_engine: AsyncEngine
) -> None:
    tenant = await factory.tenant()
    developer = await factory.member(tenant, "developer")
    busy = await make_device(factory, developer, name="busy")  # API request 1
    quiet = await make_device(factory, developer, name="quiet")  # API request 2
    await make_rule(developer, condition={"key": "v", "operator": ">", "value": 1000})  # 3
    for n in range(3):  # 3 messages of 2 points
        body = {"points": [{"ts": _ms(10 * n + j), "values": {"v": j}} for j in range(2)]}
        assert (await busy.client.post("/api/v1/telemetry", json=body)).status_code == 201
    # A repeated message: counted as a message and as points, not as stored points.
    body = {"points": [{"ts": _ms(0), "values": {"v": 0}}]}
    assert (await busy.client.post("/api/v1/telemetry", json=body)).status_code == 201
    assert (await quiet.client.post("/api/v1/telemetry", json={"telemetry": {"v": 1}})).is_success
    for _ in range(4):  # API requests 4..7
        assert (await developer.client.get("/api/v1/devices")).status_code == 200
    # A system admin's requests are not the tenant's usage.
    assert (await world.system_admin.client.get(f"/api/v1/tenants/{tenant.id}")).is_success
    await settle(runtime)
    async with owner_engine.connect() as conn:
        before = await conn.scalar(
            text("select count(*) from usage_daily where tenant_id = :t"), {"t": tenant.id}
        )
    assert before == 0  # nothing is written per request
    await usage_meter(runtime).flush(runtime)

    r = await developer.client.get(f"/api/v1/tenants/{tenant.id}/usage")  # request 8
    assert r.status_code == 200, r.text
    report = r.json()
    today = datetime.now(UTC).date()
    assert report["from"] == today.replace(day=1).isoformat()
    assert report["to"] == today.isoformat()
    assert report["granularity"] == "day"
    expected = {
        "api_requests": 7,
        "device_messages": 5,
        "telemetry_points": 8,
        "stored_points": 7,
        "rule_evaluations": 4,  # one rule x each message that stored something
        "emails_sent": 0,
        "webhooks_sent": 0,
    }
    assert report["totals"] == expected
    [day] = [p for p in report["periods"] if p["period"] == today.isoformat()]
    assert {k: v for k, v in day.items() if k != "period"} == expected
    assert len(report["periods"]) == today.day
    assert report["top_devices"] == [
        {"device_id": str(busy.id), "name": "busy", "points": 7},
        {"device_id": str(quiet.id), "name": "quiet", "points": 1},
    ]

    # A second flush adds to the same day; the monthly view sums the days.
    await usage_meter(runtime).flush(runtime)  # request 8 is counted now
    r = await developer.client.get(
        f"/api/v1/tenants/{tenant.id}/usage",
        params={"from": (today - timedelta(days=40)).isoformat(), "granularity": "month", "top": 1},
    )
    assert r.status_code == 200, r.text
    monthly = r.json()
    assert monthly["periods"][-1]["period"] == today.replace(day=1).isoformat()
    assert monthly["periods"][-1]["api_requests"] == 8
    assert len(monthly["periods"]) in (2, 3)
    assert monthly["top_devices"] == [{"device_id": str(busy.id), "name": "busy", "points": 7}]


async def test_usage_report_refuses_bad_ranges_and_non_members(
    factory: Factory, world: World
) -> None:
    path = f"/api/v1/tenants/{world.tenant_a.id}/usage"
    viewer = world.a["viewer"].client
    r = await viewer.get(path, params={"from": "2026-03-02", "to": "2026-03-01"})
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error"
    r = await viewer.get(path, params={"from": "2020-01-01", "to": "2026-01-01"})
    assert r.status_code == 422
    r = await viewer.get(path, params={"granularity": "week"})
    assert r.status_code == 422
    r = await viewer.get(path, params={"from": "yesterday"})
    assert r.status_code == 422
    assert (await world.b_admin.client.get(path)).status_code == 404
    assert (await world.anonymous.get(path)).status_code == 401
    assert (await world.system_admin.client.get(path)).status_code == 200


async def test_a_failed_flush_keeps_the_figures(factory: Factory, runtime: Runtime) -> None:
    meter = usage_meter(runtime)
    ghost = uuid.uuid4()  # no such tenant: its rows are refused by the foreign key
    tenant = await factory.tenant()
    meter.add(ghost, "api_requests", 3)
    meter.add(tenant.id, "api_requests", 2)
    await meter.flush(runtime)
    assert meter.pending == 1  # the ghost's figures are kept for the next flush
    admin = await factory.member(tenant, "viewer")
    r = await admin.client.get(
        f"/api/v1/tenants/{tenant.id}/usage", params={"from": datetime.now(UTC).date().isoformat()}
    )
    assert r.json()["totals"]["api_requests"] == 2
    meter.discard()
