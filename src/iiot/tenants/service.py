"""Tenant management: create, read, update, suspend, delete, stats, quotas; tiers.

Tenants and tiers are platform rows, but every change to a tenant is made in a session of that
tenant's context, so its audit row (tenant-owned) is written in the same transaction.
Never commits: the caller does.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from iiot.audit.service import changes, record, record_platform
from iiot.db.session import TenantSession
from iiot.devices import service as devices
from iiot.errors import Conflict, Forbidden, NotFound, ValidationFailed
from iiot.models.base import utcnow
from iiot.models.tenancy import Tenant, Tier
from iiot.outputs import from_row
from iiot.quotas import usage
from iiot.quotas.limits import EffectiveLimits, effective_limits, percentage
from iiot.quotas.ratelimit import RATE_WINDOWS
from iiot.tenancy.context import TenantContext
from iiot.tenants.repository import TenantRepository, TierRepository
from iiot.tenants.schemas import (
    NULLABLE_FIELDS,
    TENANT_ADMIN_FIELDS,
    DailyUsage,
    DayUsage,
    RateLimitOut,
    RateLimits,
    RetentionUsage,
    SeatUsage,
    TelemetryUsage,
    TenantCreate,
    TenantList,
    TenantOut,
    TenantQuotas,
    TenantStats,
    TenantUpdate,
    TierOut,
    TierUpdate,
)

if TYPE_CHECKING:
    from iiot.runtime import Runtime

# A deleted tenant stays restorable by an operator (database level) this long before purge.
PURGE_GRACE = timedelta(days=30)
PURGE_INTERVAL_SECONDS = 3600

_AUDITED_FIELDS = (
    "name",
    "slug",
    "status",
    "tier",
    "max_devices",
    "max_users",
    "max_telemetry_points_per_day",
    "max_retention_days",
    "api_requests_per_minute",
    "max_device_messages_per_minute",
    "max_points_per_second",
    "enabled_features",
    "branding",
    "settings",
)


def _snapshot(tenant: Tenant) -> dict[str, Any]:
    return {name: getattr(tenant, name) for name in _AUDITED_FIELDS}


def tenant_out(tenant: Tenant, tier: Tier | None) -> TenantOut:
    return from_row(
        TenantOut,
        tenant,
        effective_limits=effective_limits(tenant, tier).as_dict(),
        enabled_features=tenant.enabled_features or [],
        branding=tenant.branding or {},
        settings=tenant.settings or {},
    )


async def _tenant(session: TenantSession, ctx: TenantContext, *, lock: bool = False) -> Tenant:
    tenants = TenantRepository(session)
    tenant = await (tenants.get_for_update if lock else tenants.get)(ctx.tenant_id)
    if tenant is None:
        raise NotFound("tenant not found")
    return tenant


async def _tier(session: TenantSession, name: str) -> Tier:
    tier = await TierRepository(session).get(name)
    if tier is None:
        raise ValidationFailed(
            f"unknown tier {name!r}", errors=[{"field": "tier", "message": "unknown tier"}]
        )
    return tier


# --- tenants ---------------------------------------------------------------------------------


async def list_tenants(
    session: AsyncSession,
    *,
    page: int,
    limit: int,
    tier: str | None,
    status: str | None,
    search: str | None,
) -> TenantList:
    rows, total = await TenantRepository(session).page(
        tier=tier, status=status, search=search, limit=limit, offset=(page - 1) * limit
    )
    tiers = await TierRepository(session).by_names({t.tier for t in rows})
    return TenantList(
        tenants=[tenant_out(t, tiers.get(t.tier)) for t in rows],
        total=total,
        page=page,
        limit=limit,
    )


async def create_tenant(
    session: TenantSession, ctx: TenantContext, body: TenantCreate
) -> TenantOut:
    """Create tenant `ctx.tenant_id` (the caller chose the id and opened its context)."""
    tier = await _tier(session, body.tier)
    tenants = TenantRepository(session)
    await tenants.lock_slug(body.slug)
    if await tenants.slug_taken(body.slug):
        raise Conflict(f"slug {body.slug!r} is already in use", field="slug")
    tenant = await tenants.add(
        Tenant(
            id=ctx.tenant_id,
            name=body.name,
            slug=body.slug,
            tier=body.tier,
            status=body.status,
            max_devices=body.max_devices,
            max_users=body.max_users,
            max_telemetry_points_per_day=body.max_telemetry_points_per_day,
            max_retention_days=body.max_retention_days,
            api_requests_per_minute=body.api_requests_per_minute,
            max_device_messages_per_minute=body.max_device_messages_per_minute,
            max_points_per_second=body.max_points_per_second,
            enabled_features=list(body.enabled_features),
            branding=body.branding.model_dump(exclude_none=True),
            settings=dict(body.settings),
        )
    )
    await record(
        session,
        ctx,
        "tenant.create",
        target_type="tenant",
        target_id=tenant.id,
        after=_snapshot(tenant),
    )
    return tenant_out(tenant, tier)


async def get_tenant(session: TenantSession, ctx: TenantContext) -> TenantOut:
    tenant = await _tenant(session, ctx)
    return tenant_out(tenant, await TierRepository(session).get(tenant.tier))


async def update_tenant(
    session: TenantSession, ctx: TenantContext, body: TenantUpdate
) -> TenantOut:
    sent = body.model_fields_set
    if not sent:
        raise ValidationFailed("empty update: send at least one field")
    if not ctx.is_system_admin:
        restricted = sorted(sent - TENANT_ADMIN_FIELDS)
        if restricted:
            raise Forbidden(
                f"only a system admin may change {', '.join(restricted)}", fields=restricted
            )
    for name in sent - NULLABLE_FIELDS:
        if getattr(body, name) is None:
            raise ValidationFailed(
                f"{name} cannot be null", errors=[{"field": name, "message": "must not be null"}]
            )
    tenant = await _tenant(session, ctx, lock=True)
    before = _snapshot(tenant)
    tier = await _tier(session, body.tier) if body.tier is not None else None
    if body.slug is not None and body.slug != tenant.slug:
        tenants = TenantRepository(session)
        await tenants.lock_slug(body.slug)
        if await tenants.slug_taken(body.slug, other_than=tenant.id):
            raise Conflict(f"slug {body.slug!r} is already in use", field="slug")
    for name in sent:
        value = getattr(body, name)
        if name == "branding":
            assert body.branding is not None
            value = {**(tenant.branding or {}), **body.branding.model_dump(exclude_unset=True)}
            value = {k: v for k, v in value.items() if v is not None}
        elif name == "enabled_features":
            value = list(value)
        setattr(tenant, name, value)
    old, new = changes(before, _snapshot(tenant))
    if new:
        tenant.updated_at = utcnow()
        await TenantRepository(session).flush()
        await record(
            session,
            ctx,
            "tenant.update",
            target_type="tenant",
            target_id=tenant.id,
            before=old,
            after=new,
        )
        if "tier" in new:
            await record(
                session,
                ctx,
                "tenant.tier_change",
                target_type="tenant",
                target_id=tenant.id,
                before={"tier": old["tier"]},
                after={"tier": new["tier"]},
            )
        if "status" in new:
            await devices.announce_tenant_change(session, tenant.id)
            action = {"suspended": "tenant.suspend", "active": "tenant.activate"}.get(
                new["status"], "tenant.status_change"
            )
            await record(
                session,
                ctx,
                action,
                target_type="tenant",
                target_id=tenant.id,
                before={"status": old["status"]},
                after={"status": new["status"]},
            )
    return tenant_out(tenant, tier or await TierRepository(session).get(tenant.tier))


async def set_status(session: TenantSession, ctx: TenantContext, status: str) -> TenantOut:
    """Suspend or activate; repeating the current status changes nothing."""
    tenant = await _tenant(session, ctx, lock=True)
    if tenant.status != status:
        before = tenant.status
        tenant.status, tenant.updated_at = status, utcnow()
        await TenantRepository(session).flush()
        await devices.announce_tenant_change(session, tenant.id)
        await record(
            session,
            ctx,
            "tenant.suspend" if status == "suspended" else "tenant.activate",
            target_type="tenant",
            target_id=tenant.id,
            before={"status": before},
            after={"status": status},
        )
    return tenant_out(tenant, await TierRepository(session).get(tenant.tier))


async def delete_tenant(session: TenantSession, ctx: TenantContext, *, confirm: str) -> None:
    """Soft delete: the tenant disappears at once; it can be restored for PURGE_GRACE, then
    the purge job removes it with everything it owns. `confirm` must repeat its slug."""
    tenant = await _tenant(session, ctx, lock=True)
    if confirm != tenant.slug:
        raise ValidationFailed(
            "confirm must be the tenant's slug",
            errors=[{"field": "confirm", "in": "query", "message": "does not match the slug"}],
        )
    tenant.deleted_at = utcnow()
    await TenantRepository(session).flush()
    await devices.announce_tenant_change(session, tenant.id)
    await record(
        session,
        ctx,
        "tenant.delete",
        target_type="tenant",
        target_id=tenant.id,
        before=_snapshot(tenant),
        after={"deleted_at": tenant.deleted_at},
    )


async def restore_tenant(session: TenantSession, ctx: TenantContext) -> TenantOut:
    """Bring back a soft-deleted tenant with all its data (within PURGE_GRACE)."""
    tenants = TenantRepository(session)
    tenant = await tenants.get_deleted_for_update(ctx.tenant_id)
    if tenant is None:
        if await tenants.get(ctx.tenant_id) is not None:
            raise Conflict("this tenant is not deleted", reason="not_deleted")
        raise NotFound("tenant not found")
    deleted_at = tenant.deleted_at
    tenant.deleted_at, tenant.updated_at = None, utcnow()
    await tenants.flush()
    await devices.announce_tenant_change(session, tenant.id)
    await record(
        session,
        ctx,
        "tenant.restore",
        target_type="tenant",
        target_id=tenant.id,
        before={"deleted_at": deleted_at},
        after={"deleted_at": None},
    )
    return tenant_out(tenant, await TierRepository(session).get(tenant.tier))


async def purge_deleted_tenants(rt: Runtime) -> list[uuid.UUID]:
    """Job: remove tenants deleted more than PURGE_GRACE ago, with everything they own."""
    async with rt.db.system() as session:
        purged = list(await TenantRepository(session).purge_deleted_before(utcnow() - PURGE_GRACE))
        for tenant_id in purged:
            await record_platform(session, "tenant.purge", actor_id=None, subject=str(tenant_id))
    return purged


# --- usage -----------------------------------------------------------------------------------


def next_utc_midnight(now: datetime | None = None) -> datetime:
    now = now or datetime.now(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)


# The usage figures by name (`iiot.quotas.usage`), as read for one tenant.
Figures = Mapping[str, Any]
# The figures each answer is made of (a figure no module provides counts as 0 or unknown).
STATS_FIGURES = frozenset(
    {
        "device_count",
        "user_count",
        "invited_count",
        "rule_count",
        "alerts_24h",
        "active_alerts",
        "telemetry_points_today",
    }
)
QUOTA_FIGURES = frozenset(
    {
        "device_count",
        "user_count",
        "invited_count",
        "telemetry_points_today",
        "oldest_data_age_days",
    }
)


def _int(figures: Figures, name: str) -> int:
    return int(figures.get(name) or 0)


def tenant_stats(tenant_id: uuid.UUID, limits: EffectiveLimits, figures: Figures) -> TenantStats:
    devices, users = _int(figures, "device_count"), _int(figures, "user_count")
    invited, points = _int(figures, "invited_count"), _int(figures, "telemetry_points_today")
    return TenantStats(
        tenant_id=tenant_id,
        device_count=devices,
        user_count=users,
        invited_count=invited,
        rule_count=_int(figures, "rule_count"),
        alerts_24h=_int(figures, "alerts_24h"),
        active_alerts=_int(figures, "active_alerts"),
        telemetry_points_today=points,
        device_quota_percent=percentage(devices, limits.max_devices),
        user_quota_percent=percentage(users + invited, limits.max_users),
        telemetry_quota_percent=percentage(points, limits.max_telemetry_points_per_day),
    )


def tenant_quotas(limits: EffectiveLimits, figures: Figures) -> TenantQuotas:
    devices = _int(figures, "device_count")
    seats = _int(figures, "user_count") + _int(figures, "invited_count")
    points = _int(figures, "telemetry_points_today")
    oldest = figures.get("oldest_data_age_days")
    return TenantQuotas(
        devices=SeatUsage(
            used=devices,
            limit=limits.max_devices,
            percentage=percentage(devices, limits.max_devices),
        ),
        users=SeatUsage(
            used=seats, limit=limits.max_users, percentage=percentage(seats, limits.max_users)
        ),
        telemetry_points=TelemetryUsage(
            used_today=points,
            limit_per_day=limits.max_telemetry_points_per_day,
            percentage=percentage(points, limits.max_telemetry_points_per_day),
            resets_at=next_utc_midnight(),
        ),
        data_retention=RetentionUsage(
            current_days=limits.max_retention_days,
            oldest_data_age_days=int(oldest) if oldest is not None else None,
        ),
        rate_limits=RateLimits(
            **{
                name: RateLimitOut(limit=getattr(limits, name), window_seconds=window)
                for name, window in RATE_WINDOWS.items()
            }
        ),
    )


# --- tiers -----------------------------------------------------------------------------------


async def list_tiers(session: AsyncSession) -> list[TierOut]:
    return [TierOut.model_validate(t) for t in await TierRepository(session).list()]


async def update_tier(
    session: AsyncSession,
    name: str,
    body: TierUpdate,
    *,
    actor_id: uuid.UUID,
    ip: str | None = None,
) -> TierOut:
    sent = body.model_fields_set
    if not sent:
        raise ValidationFailed("empty update: send at least one field")
    for field in ("display_name", "features"):
        if field in sent and getattr(body, field) is None:
            raise ValidationFailed(
                f"{field} cannot be null", errors=[{"field": field, "message": "must not be null"}]
            )
    tiers = TierRepository(session)
    tier = await tiers.get_for_update(name)
    if tier is None:
        raise NotFound(f"tier {name!r} not found")
    before = TierOut.model_validate(tier).model_dump()
    for field in sent:
        setattr(tier, field, getattr(body, field))
    tier.updated_at = utcnow()
    await tiers.flush()
    after = TierOut.model_validate(tier)
    old, new = changes(before, after.model_dump())
    if new:
        await record_platform(
            session,
            "tier.update",
            actor_id=actor_id,
            subject=name,
            details={"before": old, "after": new},
            ip=ip,
        )
    return after


async def daily_usage(session: TenantSession, ctx: TenantContext, *, days: int) -> DailyUsage:
    today = datetime.now(UTC).date()
    first = today - timedelta(days=days - 1)
    points = await usage.points_per_day(session, ctx, first)
    return DailyUsage(
        days=[
            DayUsage(day=day, telemetry_points=points.get(day, 0))
            for day in (first + timedelta(days=n) for n in range(days))
        ]
    )
