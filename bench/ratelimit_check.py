"""The cost of one rate-limit check (an atomic check-and-count on a moving window), in µs.

Times `RateLimiter.consume` in memory and, when a Redis answers (IIOT_BENCH_REDIS, default
redis://127.0.0.1:6379/13), in Redis: sequentially (the latency a request pays) and with 50
concurrent callers (throughput per check). Writes bench/results/ratelimit_check.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from pathlib import Path

from iiot.quotas.ratelimit import RateLimiter, tenant_rate

RESULTS = Path(__file__).parent / "results" / "ratelimit_check.json"


async def _measure(limiter: RateLimiter, n: int, concurrency: int) -> float:
    # The professional tier's 6000 per minute; a run of n <= 6000 checks is never refused.
    rate = tenant_rate("api_requests_per_minute", max(6000, n))
    key = str(uuid.uuid4())
    await limiter.consume(rate, key)  # connect, load the script
    start = time.perf_counter()
    if concurrency == 1:
        for _ in range(n):
            await limiter.consume(rate, key)
    else:
        per = n // concurrency

        async def worker() -> None:
            for _ in range(per):
                await limiter.consume(rate, key)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    await limiter.clear(rate, key)
    return (time.perf_counter() - start) / n * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checks", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    redis_url = os.environ.get("IIOT_BENCH_REDIS", "redis://127.0.0.1:6379/13")
    backends: dict[str, str | None] = {"memory": None, "redis": redis_url}
    out: dict[str, dict[str, float]] = {}
    try:
        import redis.asyncio as redis

        client = redis.from_url(redis_url)
        await client.ping()
        start = time.perf_counter()
        for _ in range(args.checks):
            await client.ping()
        out["redis_ping_round_trip"] = {
            "sequential_us": round((time.perf_counter() - start) / args.checks * 1e6, 1)
        }
        await client.aclose()
    except Exception as exc:  # noqa: BLE001
        print(f"redis ping: skipped ({exc})")
    for name, url in backends.items():
        limiter = RateLimiter(url)
        try:
            figures = {}
            for label, conc in (("sequential_us", 1), ("concurrent50_us", 50)):
                runs = [await _measure(limiter, args.checks, conc) for _ in range(args.runs)]
                figures[label] = round(statistics.median(runs), 1)
            out[name] = figures
        except Exception as exc:  # noqa: BLE001 - no Redis: report memory only
            print(f"{name}: skipped ({exc})")
        finally:
            await limiter.close()
    for name, figures in out.items():
        print(f"{name:7s} " + "  ".join(f"{k}={v}" for k, v in figures.items()))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
