"""Usage figures for tenant stats and quotas, contributed by each domain.

A module lists usage providers `fn(session, ctx) -> {name: SQL scalar expression}`, each
expression a subquery on the module's own tables built by its repositories. `read` evaluates
every provider's figures together with the tenant's effective limits in one statement. A
figure no module provides is reported as 0 by the endpoints.

Known figures: device_count, user_count, invited_count, rule_count, alerts_24h,
active_alerts, telemetry_points_today, oldest_data_age_days.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement

from iiot.db.session import TenantSession
from iiot.modules import UsageProvider
from iiot.quotas.limits import EffectiveLimits
from iiot.quotas.repository import QuotaRepository
from iiot.tenancy.context import TenantContext


def figures(
    providers: Iterable[UsageProvider], session: TenantSession, ctx: TenantContext
) -> dict[str, ColumnElement[Any]]:
    """Every provider's figures by name (a later provider's figure replaces an earlier one's)."""
    merged: dict[str, ColumnElement[Any]] = {}
    for provider in providers:
        merged.update(provider(session, ctx))
    return merged


async def read(
    providers: Iterable[UsageProvider], session: TenantSession, ctx: TenantContext
) -> tuple[EffectiveLimits, dict[str, Any]]:
    """The tenant's effective limits and every figure's value, in one statement."""
    return await QuotaRepository(session, ctx).limits_with(figures(providers, session, ctx))


async def collect(
    providers: Iterable[UsageProvider], session: TenantSession, ctx: TenantContext
) -> dict[str, Any]:
    """Every figure's value by name."""
    return (await read(providers, session, ctx))[1]


async def points_per_day(
    session: TenantSession, ctx: TenantContext, since: date
) -> dict[date, int]:
    """Telemetry points accepted per UTC day from `since` (days without points absent)."""
    return await QuotaRepository(session, ctx).points_per_day(since)
