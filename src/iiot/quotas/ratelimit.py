"""Fixed-window counters for rate limits, in process or shared through Redis.

With `IIOT_REDIS_URL` set, every API process counts in the same Redis keys, so N processes
enforce one limit. Without it, counters live in this process (one-process deployments).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class WindowCount:
    count: int
    retry_after: int


class RateCounter(Protocol):
    async def peek(self, key: str, window: int) -> WindowCount: ...
    async def hit(self, key: str, window: int, amount: int = 1) -> WindowCount: ...
    async def reset(self, key: str, window: int) -> None: ...


def _window(window: int, now: float) -> tuple[int, int]:
    start = int(now // window) * window
    return start, max(1, start + window - int(now))


class MemoryRateCounter:
    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], int] = {}

    async def peek(self, key: str, window: int) -> WindowCount:
        start, retry = _window(window, time.time())
        return WindowCount(self._counts.get((key, start), 0), retry)

    async def hit(self, key: str, window: int, amount: int = 1) -> WindowCount:
        start, retry = _window(window, time.time())
        if len(self._counts) > 100_000:
            self._counts = {k: v for k, v in self._counts.items() if k[1] >= start - window}
        value = self._counts.get((key, start), 0) + amount
        self._counts[(key, start)] = value
        return WindowCount(value, retry)

    async def reset(self, key: str, window: int) -> None:
        start, _ = _window(window, time.time())
        self._counts.pop((key, start), None)


class RedisRateCounter:
    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(url)

    async def peek(self, key: str, window: int) -> WindowCount:
        start, retry = _window(window, time.time())
        value = await self._redis.get(f"iiot:rl:{key}:{start}")
        return WindowCount(int(value or 0), retry)

    async def hit(self, key: str, window: int, amount: int = 1) -> WindowCount:
        start, retry = _window(window, time.time())
        name = f"iiot:rl:{key}:{start}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incrby(name, amount)
            pipe.expire(name, window + 1)
            value, _ = await pipe.execute()
        return WindowCount(int(value), retry)

    async def reset(self, key: str, window: int) -> None:
        start, _ = _window(window, time.time())
        await self._redis.delete(f"iiot:rl:{key}:{start}")

    async def close(self) -> None:
        await self._redis.aclose()


def make_rate_counter(redis_url: str | None) -> RateCounter:
    return RedisRateCounter(redis_url) if redis_url else MemoryRateCounter()
