"""Usage figures for tenant stats and quotas, contributed by each domain.

A module lists usage providers `async fn(session, ctx) -> dict[str, int | float | None]` that
read its own tables (through its repositories). Stats and quota endpoints merge them; a
figure no module provides is reported as 0.

Known figures: device_count, user_count, invited_count, rule_count, alerts_24h,
active_alerts, telemetry_points_today, oldest_data_age_days.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from iiot.modules import UsageProvider
from iiot.tenancy.context import TenantContext


async def collect(
    providers: Iterable[UsageProvider], session: AsyncSession, ctx: TenantContext
) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for provider in providers:
        figures.update(await provider(session, ctx))
    return figures
