"""`GET /tenants/{id}/usage/daily`: points accepted per UTC day, from the usage meter."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.fixtures.factories import World


async def test_points_per_day_of_the_last_days(world: World, owner_engine: AsyncEngine) -> None:
    today = datetime.now(UTC).date()
    rows = [(world.tenant_a.id, today, 120), (world.tenant_a.id, today - timedelta(days=2), 7)]
    rows += [(world.tenant_b.id, today, 999_999)]  # another tenant's count never shows
    async with owner_engine.begin() as conn:
        for tenant_id, day, points in rows:
            await conn.execute(
                text(
                    "insert into tenant_usage_daily (tenant_id, day, telemetry_points)"
                    " values (:t, :d, :p)"
                ),
                {"t": tenant_id, "d": day, "p": points},
            )
    r = await world.a["viewer"].client.get(
        f"/api/v1/tenants/{world.tenant_a.id}/usage/daily", params={"days": 3}
    )
    assert r.status_code == 200, r.text
    assert r.json()["days"] == [
        {"day": str(today - timedelta(days=2)), "telemetry_points": 7},
        {"day": str(today - timedelta(days=1)), "telemetry_points": 0},
        {"day": str(today), "telemetry_points": 120},
    ]
    default = await world.a["viewer"].client.get(f"/api/v1/tenants/{world.tenant_a.id}/usage/daily")
    assert len(default.json()["days"]) == 30
    assert date.fromisoformat(default.json()["days"][-1]["day"]) == today


async def test_bounds_and_other_tenants(world: World) -> None:
    client = world.a["admin"].client
    r = await client.get(f"/api/v1/tenants/{world.tenant_a.id}/usage/daily", params={"days": 0})
    assert r.status_code == 422
    r = await client.get(f"/api/v1/tenants/{world.tenant_b.id}/usage/daily")
    assert r.status_code == 404
