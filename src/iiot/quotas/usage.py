"""Usage figures for tenant stats and quotas, contributed by each domain.

A domain registers a provider `async fn(session, ctx) -> dict[str, int | float | None]` that
reads its own tables (through its repositories). Stats and quota endpoints merge them; a
figure no domain provides yet is reported as 0.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from iiot.tenancy.context import TenantContext

UsageProvider = Callable[[AsyncSession, TenantContext], Awaitable[dict[str, Any]]]

# Known figures: device_count, user_count, invited_count, rule_count, alerts_24h,
# active_alerts, telemetry_points_today, oldest_data_age_days.
PROVIDERS: dict[str, UsageProvider] = {}


def register(name: str, provider: UsageProvider) -> None:
    PROVIDERS[name] = provider


async def collect(session: AsyncSession, ctx: TenantContext) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for provider in PROVIDERS.values():
        figures.update(await provider(session, ctx))
    return figures
