"""The tenant rate limits, checked where traffic enters.

- `check_api_request`: every authenticated API request of a tenant's members and API keys
  (system admins are exempt), against `api_requests_per_minute`.
- `check_device_message`: one message of one device, over HTTP or MQTT (a gateway's
  sub-devices count each), against `max_device_messages_per_minute`.
- `check_points`: the points of one ingest against the tenant's `max_points_per_second`.

Each raises `RateLimited` (429, `code: rate_limited`, naming the limit) and counts nothing when
it refuses. The limits are the tenant's own value over its tier's (None: unlimited), cached
per process for `LIMITS_CACHE_SECONDS`.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

from iiot.metering.meter import usage_meter
from iiot.quotas.limits import EffectiveLimits
from iiot.quotas.ratelimit import tenant_rate
from iiot.quotas.repository import TenantLimitsRepository

if TYPE_CHECKING:
    from iiot.runtime import Runtime

_UNLIMITED = EffectiveLimits(
    max_devices=None,
    max_users=None,
    max_telemetry_points_per_day=None,
    max_retention_days=None,
    api_requests_per_minute=None,
    max_device_messages_per_minute=None,
    max_points_per_second=None,
)


def _limits_lookups(rt: Runtime) -> dict[uuid.UUID, asyncio.Future[EffectiveLimits]]:
    return {}


async def tenant_limits(rt: Runtime, tenant_id: uuid.UUID) -> EffectiveLimits:
    """The tenant's effective limits, from the process cache or the database.

    One look-up per tenant at a time: when the cached entry expires under load, the requests
    in flight wait for one query instead of each opening a session for the same row."""
    cached = rt.rate.cached_limits(tenant_id)
    if cached is not None:
        return cached
    inflight = rt.state.get(_limits_lookups)
    pending = inflight.get(tenant_id)
    if pending is not None:
        return await asyncio.shield(pending)
    future: asyncio.Future[EffectiveLimits] = asyncio.get_running_loop().create_future()
    inflight[tenant_id] = future
    try:
        async with rt.db.system() as session:
            found = await TenantLimitsRepository(session).limits_of(tenant_id)
    except BaseException as exc:
        future.set_exception(exc)
        future.exception()  # retrieved: waiters re-raise it, nobody else must log it
        raise
    finally:
        inflight.pop(tenant_id, None)
    limits = found or _UNLIMITED
    rt.rate.cache_limits(tenant_id, limits)
    future.set_result(limits)
    return limits


async def check_api_request(rt: Runtime, tenant_id: uuid.UUID) -> None:
    """Count one API request of the tenant, or refuse it (429)."""
    limits = await tenant_limits(rt, tenant_id)
    if limits.api_requests_per_minute is not None:
        rate = tenant_rate("api_requests_per_minute", limits.api_requests_per_minute)
        await rt.rate.hit(rate, str(tenant_id))
    usage_meter(rt).add(tenant_id, "api_requests")


async def check_device_message(
    rt: Runtime,
    tenant_id: uuid.UUID,
    device_id: uuid.UUID,
    limits: EffectiveLimits | None = None,
) -> None:
    """Count one message of `device_id`, or raise `RateLimited` (nothing counted).

    For every transport: HTTP ingest calls it per device in the request, the MQTT transport
    per received message (per sub-device for a gateway). `limits` may be passed when the
    caller already holds the tenant's limits; otherwise they are read (cached).
    """
    limits = limits or await tenant_limits(rt, tenant_id)
    if limits.max_device_messages_per_minute is not None:
        rate = tenant_rate("max_device_messages_per_minute", limits.max_device_messages_per_minute)
        await rt.rate.hit(rate, str(tenant_id), str(device_id))


async def check_points(
    rt: Runtime, tenant_id: uuid.UUID, points: int, limits: EffectiveLimits | None = None
) -> None:
    """Count `points` against the tenant's ingest rate, or raise `RateLimited`."""
    limits = limits or await tenant_limits(rt, tenant_id)
    if limits.max_points_per_second is not None and points > 0:
        rate = tenant_rate("max_points_per_second", limits.max_points_per_second)
        await rt.rate.hit(rate, str(tenant_id), cost=points)
