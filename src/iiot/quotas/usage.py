"""Usage figures for tenant stats and quotas, contributed by each domain.

A module lists usage providers `fn(parameters) -> {name: SQL scalar expression}`, each
expression a subquery on the module's own tables built by its repositories from the shared
`UsageParameters` (the tenant, the time, the UTC date). `read` evaluates every figure together
with the tenant's effective limits in one statement, in the caller's tenant transaction
(row-level security applies to each subquery). The statement is built once per set of
providers and reused with each request's values. A figure no module provides is reported as 0
by the endpoints. `tenant_values` hands the same figures to the resolver
(`iiot.callers.resolver.read_in_tenant`), which reads them in the statement that resolves the
caller: the stats and quotas routes cost one round trip.

Known figures: device_count, user_count, invited_count, rule_count, alerts_24h,
active_alerts, telemetry_points_today, oldest_data_age_days.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement

from iiot.db.driver import TenantValues
from iiot.db.session import TenantSession
from iiot.modules import UsageProvider
from iiot.quotas.limits import EffectiveLimits
from iiot.quotas.repository import (
    USAGE_PARAMETERS,
    QuotaRepository,
    UsageStatement,
    usage_statement,
)
from iiot.tenancy.context import TenantContext


def _figures(providers: tuple[UsageProvider, ...]) -> dict[str, ColumnElement[Any]]:
    """Every figure by name (a later provider's figure replaces an earlier one's)."""
    figures: dict[str, ColumnElement[Any]] = {}
    for provider in providers:
        figures.update(provider(USAGE_PARAMETERS))
    return figures


@lru_cache(maxsize=8)
def statement(providers: tuple[UsageProvider, ...]) -> UsageStatement:
    """The one statement of these providers' figures and the tenant's limits."""
    return usage_statement(_figures(providers))


@lru_cache(maxsize=16)
def tenant_values(providers: tuple[UsageProvider, ...], names: frozenset[str]) -> TenantValues:
    """The figures named `names` among these providers' (those no provider gives are left
    out), for the statement that resolves the caller, which reads the tenant's limits itself.
    A route reads only the figures it answers with: they differ widely in cost."""
    figures = {name: f for name, f in _figures(providers).items() if name in names}
    return TenantValues(columns=figures, parameters=frozenset({"now", "today"}))


def values_at(now: datetime) -> dict[str, Any]:
    """The figures' parameters besides the tenant, at `now` (UTC)."""
    return {"now": now, "today": now.date()}


async def read(
    providers: Iterable[UsageProvider], session: TenantSession, ctx: TenantContext
) -> tuple[EffectiveLimits, dict[str, Any]]:
    """The tenant's effective limits and every figure's value, in one statement."""
    return await QuotaRepository(session, ctx).usage(statement(tuple(providers)), datetime.now(UTC))


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
