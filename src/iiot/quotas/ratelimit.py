"""Rate limits: an atomic check-and-count over a moving window, in Redis or in this process.

Every limit is a moving window (the `limits` library's `MovingWindowRateLimiter`): a hit of
cost `n` is admitted only if the entries of the last `window` seconds plus `n` stay within
the limit, and the check and the count are one step: a Lua script in Redis, a lock per key in
memory. Concurrent requests can therefore never pass a limit, and there is no window boundary
across which twice the limit gets through.

With `IIOT_REDIS_URL` set every process counts in the same Redis keys, so N processes enforce
one limit; without it the counters live in this process, which is only correct for a single
process (`iiot serve` refuses to start several workers without Redis, see
`require_shared_state`). A failing Redis refuses requests (503) rather than letting them in
unlimited.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from iiot.errors import RateLimited, ServiceUnavailable

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from iiot.quotas.limits import EffectiveLimits
    from iiot.runtime import Runtime

log = logging.getLogger(__name__)

KEY_PREFIX = "iiot:rl"
# How long a tenant's limits are cached per process; a changed limit applies within this.
LIMITS_CACHE_SECONDS = 5.0
# max_points_per_second is enforced over this many seconds (limit x window points), so that
# a batch larger than one second's worth is accepted when the average allows it.
POINTS_WINDOW_SECONDS = 10
# The window of each tenant rate limit, in seconds.
RATE_WINDOWS = {
    "api_requests_per_minute": 60,
    "max_device_messages_per_minute": 60,
    "max_points_per_second": POINTS_WINDOW_SECONDS,
}


@dataclass(frozen=True, slots=True)
class Rate:
    """At most `amount` per `window` seconds; `name` is reported when it refuses."""

    name: str
    amount: int
    window: int

    def item(self) -> RateLimitItemPerSecond:
        return RateLimitItemPerSecond(self.amount, self.window, namespace=self.name)


def tenant_rate(name: str, configured: int) -> Rate:
    """The enforced form of a tenant limit (`max_points_per_second` is enforced per 10 s)."""
    window = RATE_WINDOWS[name]
    amount = configured * window if name == "max_points_per_second" else configured
    return Rate(name, amount, window)


class RateLimiter:
    """The process's limiter: shared through Redis when a URL is given."""

    def __init__(self, redis_url: str | None = None) -> None:
        self.shared = redis_url is not None
        if redis_url is not None:
            self._storage: MemoryStorage | RedisStorage = RedisStorage(
                "async+" + redis_url,
                implementation="redispy",
                key_prefix=KEY_PREFIX,
                wrap_exceptions=True,
            )
        else:
            self._storage = MemoryStorage()
        self._strategy = MovingWindowRateLimiter(self._storage)
        self._limits: dict[uuid.UUID, tuple[EffectiveLimits, float]] = {}

    async def consume(self, rate: Rate, *key: str, cost: int = 1) -> bool:
        """Count `cost` against `rate` for `key` if it fits; False (nothing counted) if not."""
        try:
            return await self._strategy.hit(rate.item(), *key, cost=cost)
        except Exception as exc:
            log.warning("rate-limit storage failed: %s", exc)
            raise ServiceUnavailable("rate-limit store unavailable") from exc

    async def has_room(self, rate: Rate, *key: str, cost: int = 1) -> bool:
        """Whether `cost` would fit now (counts nothing)."""
        try:
            return await self._strategy.test(rate.item(), *key, cost=cost)
        except Exception as exc:
            log.warning("rate-limit storage failed: %s", exc)
            raise ServiceUnavailable("rate-limit store unavailable") from exc

    async def hit(self, rate: Rate, *key: str, cost: int = 1) -> None:
        """Count `cost` against `rate`, or raise `RateLimited` (nothing counted)."""
        if not await self.consume(rate, *key, cost=cost):
            raise await self.refusal(rate, *key, cost=cost)

    async def refusal(self, rate: Rate, *key: str, cost: int = 1) -> RateLimited:
        """The 429 for `rate`, with the seconds until `cost` would fit again."""
        retry_after = rate.window
        try:
            stats = await self._strategy.get_window_stats(rate.item(), *key)
            if cost <= rate.amount:
                retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        except Exception:  # noqa: BLE001 - the refusal stands; the hint falls back to the window
            log.warning("rate-limit storage failed reading a window", exc_info=True)
        return RateLimited(rate.name, rate.window, retry_after, quota=rate.amount)

    async def clear(self, rate: Rate, *key: str) -> None:
        await self._strategy.clear(rate.item(), *key)

    # -- each tenant's effective limits, cached briefly ---------------------------------------

    def cached_limits(self, tenant_id: uuid.UUID) -> EffectiveLimits | None:
        hit = self._limits.get(tenant_id)
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
        return None

    def cache_limits(self, tenant_id: uuid.UUID, limits: EffectiveLimits) -> None:
        if len(self._limits) > 10_000:
            self._limits.clear()
        self._limits[tenant_id] = (limits, time.monotonic() + LIMITS_CACHE_SECONDS)

    def forget_limits(self) -> None:
        self._limits.clear()

    async def close(self) -> None:
        if isinstance(self._storage, RedisStorage):
            pool = getattr(self._storage.bridge, "storage", None)
            aclose = getattr(pool, "aclose", None)
            if aclose is not None:
                await aclose()


def make_rate_limiter(redis_url: str | None) -> RateLimiter:
    return RateLimiter(redis_url)


class SharedStateRequired(RuntimeError):
    """Several processes would each enforce the limits alone."""


def require_shared_state(redis_url: str | None, workers: int) -> None:
    """Refuse to run `workers` > 1 processes without Redis: each would count alone, and N
    processes would admit N times every limit. Called by `iiot serve` before it starts."""
    if workers > 1 and not redis_url:
        raise SharedStateRequired(
            f"{workers} workers need IIOT_REDIS_URL: without a shared Redis each process "
            "counts rate limits and login failures alone, so N workers would admit N times "
            "every limit. Set IIOT_REDIS_URL or run one worker."
        )


class SingleProcessClaim:
    """The advisory lock of the one process counting in memory; `release` at shutdown."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def release(self) -> None:
        from iiot.quotas.repository import release_memory_limits_lock

        try:
            await release_memory_limits_lock(self._conn)
        finally:
            await self._conn.close()


async def claim_single_process(rt: Runtime) -> SingleProcessClaim | None:
    """Without Redis, make sure this is the only iiot process on the database: hold an
    advisory lock for the process's life. If another process counting in memory holds it,
    this one refuses to start (`SharedStateRequired`)."""
    from iiot.quotas.repository import take_memory_limits_lock

    if rt.rate.shared:
        return None
    conn = await rt.db.session_engine.connect()
    if not await take_memory_limits_lock(conn):
        await conn.close()
        raise SharedStateRequired(
            "another iiot process already serves this database without IIOT_REDIS_URL: each "
            "would count rate limits alone and together admit N times every limit. Set "
            "IIOT_REDIS_URL on every process, or run only one."
        )
    return SingleProcessClaim(conn)
