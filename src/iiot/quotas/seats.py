"""Seat quotas (devices, users): checked under the tenant's seat lock in the creating
transaction, so that concurrent creates at the limit cannot exceed it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

from iiot.db.session import TenantSession
from iiot.errors import QuotaExceeded
from iiot.quotas.repository import QuotaRepository
from iiot.tenancy.context import TenantContext

SeatType = Literal["devices", "users"]


async def lock_seats(session: TenantSession, ctx: TenantContext) -> None:
    """Take the tenant's seat lock until the caller's transaction ends (membership changes
    take it so that seat counting and the last-admin rule see a settled state)."""
    await QuotaRepository(session, ctx).lock_seats()


async def take_seat(
    session: TenantSession,
    ctx: TenantContext,
    quota_type: SeatType,
    count_used: Callable[[], Awaitable[int]],
    wanted: int = 1,
) -> None:
    """Lock the tenant's seats, count the seats in use, refuse if `wanted` more won't fit.

    The lock is held until the caller's transaction ends, so the caller's insert is counted
    by the next creator.
    """
    quotas = QuotaRepository(session, ctx)
    await quotas.lock_seats()
    limits = await quotas.limits()
    limit = limits.max_devices if quota_type == "devices" else limits.max_users
    if limit is None:
        return
    used = await count_used()
    if used + wanted > limit:
        raise QuotaExceeded(quota_type, limit=limit, current=used)
