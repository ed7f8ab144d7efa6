"""Access tokens stopped before their expiry (sign-out), by `jti`, until they expire.

Access tokens are self-contained JWTs; signing out adds the token's `jti` here until its own
`exp`, and every request checks it. With `IIOT_REDIS_URL` set the list lives in Redis, shared
by every API process (like the rate counters); without it, in this process.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from iiot.runtime import Runtime

_REDIS_PREFIX = "iiot:jti:"


class AccessDenyList(Protocol):
    async def deny(self, jti: str, expires_at: datetime) -> None: ...
    async def is_denied(self, jti: str) -> bool: ...


def _seconds_left(expires_at: datetime) -> int:
    return math.ceil((expires_at - datetime.now(UTC)).total_seconds())


class MemoryDenyList:
    MAX_ENTRIES = 200_000

    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    async def deny(self, jti: str, expires_at: datetime) -> None:
        left = _seconds_left(expires_at)
        if left <= 0:
            return
        now = time.monotonic()
        if len(self._until) >= self.MAX_ENTRIES:
            self._until = {k: v for k, v in self._until.items() if v > now}
        self._until[jti] = now + left

    async def is_denied(self, jti: str) -> bool:
        until = self._until.get(jti)
        if until is None:
            return False
        if until <= time.monotonic():
            self._until.pop(jti, None)
            return False
        return True


class RedisDenyList:
    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(url)

    async def deny(self, jti: str, expires_at: datetime) -> None:
        left = _seconds_left(expires_at)
        if left > 0:
            await self._redis.set(f"{_REDIS_PREFIX}{jti}", b"1", ex=left)

    async def is_denied(self, jti: str) -> bool:
        return bool(await self._redis.exists(f"{_REDIS_PREFIX}{jti}"))

    async def close(self) -> None:
        await self._redis.aclose()


def make_deny_list(redis_url: str | None) -> AccessDenyList:
    return RedisDenyList(redis_url) if redis_url else MemoryDenyList()


def _for_runtime(rt: Runtime) -> AccessDenyList:
    return make_deny_list(rt.settings.redis_url)


def deny_list(rt: Runtime) -> AccessDenyList:
    """This runtime's deny list (one per process)."""
    return rt.state.get(_for_runtime)
