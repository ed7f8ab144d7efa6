"""Batch ingest over HTTP against a real server, with a raw COPY of the same rows as reference.

    .venv/bin/python bench/ingest_batch.py [--quick]

1,000 devices, one device token each; every request is one device's batch of 1,000 points
(100 timestamps x 10 keys) sent with its token. Concurrent requests from an asyncio httpx
client. Reference, in the same run: `COPY` of the same number of rows (same devices and keys,
other timestamps) into the same `telemetry` table as the owner, both in one stream and as one
committed COPY per 1,000 rows. Then a sweep of batch sizes, plotted to
bench/results/ingest_batch_sweep.png. Figures are medians of the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

KEYS = [f"k{i}" for i in range(10)]
STEP_MS = 10  # between two timestamps of one batch


@dataclass(frozen=True)
class Batch:
    token: str
    device_id: uuid.UUID
    body: bytes
    points: int


class Timeline:
    """Hands out disjoint time windows, so no point is ever a duplicate of another."""

    def __init__(self) -> None:
        self.base_ms = int((datetime.now(UTC) - timedelta(hours=5)).timestamp() * 1000)
        self.window = 0

    def next_ms(self, span_ms: int) -> int:
        start = self.base_ms + self.window
        self.window += span_ms
        return start


def make_batches(
    tenant: harness.SeededTenant, total_points: int, batch_points: int, timeline: Timeline
) -> list[Batch]:
    items = batch_points // len(KEYS)
    batches = []
    for b in range(total_points // batch_points):
        d = b % len(tenant.device_ids)
        start = timeline.next_ms(items * STEP_MS)
        points = [
            {
                "ts": start + i * STEP_MS,
                "values": {k: round(20 + (i * 7 + j) % 50 * 0.37, 2) for j, k in enumerate(KEYS)},
            }
            for i in range(items)
        ]
        body = json.dumps({"points": points}).encode()
        batches.append(
            Batch(tenant.device_tokens[d], tenant.device_ids[d], body, items * len(KEYS))
        )
    return batches


async def send_all(url: str, batches: list[Batch], concurrency: int) -> dict[str, float]:
    queue: asyncio.Queue[Batch] = asyncio.Queue()
    for b in batches:
        queue.put_nowait(b)
    stored = 0
    latencies: list[float] = []

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal stored
        while True:
            try:
                batch = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            t0 = time.perf_counter()
            r = await client.post(
                "/api/v1/telemetry",
                content=batch.body,
                headers={"X-API-Key": batch.token, "Content-Type": "application/json"},
            )
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 201:
                raise RuntimeError(f"ingest answered {r.status_code}: {r.text[:500]}")
            body = r.json()
            if body["points"] != batch.points or body["duplicates"] != 0:
                raise RuntimeError(f"unexpected ingest answer {body}")
            stored += body["points"]

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return {
        "points": stored,
        "seconds": round(elapsed, 3),
        "points_per_s": round(stored / elapsed, 1),
        "requests_per_s": round(len(batches) / elapsed, 1),
        "request_p50_ms": round(harness.percentile(latencies, 0.5) * 1000, 2),
        "request_p99_ms": round(harness.percentile(latencies, 0.99) * 1000, 2),
    }


def copy_payloads(
    tenant: harness.SeededTenant, total_points: int, batch_points: int, timeline: Timeline
) -> list[bytes]:
    """The same rows as `make_batches` would send (other timestamps), as COPY text blocks."""
    items = batch_points // len(KEYS)
    out = []
    for b in range(total_points // batch_points):
        d = tenant.device_ids[b % len(tenant.device_ids)]
        start = timeline.next_ms(items * STEP_MS)
        lines = []
        for i in range(items):
            ts = datetime.fromtimestamp((start + i * STEP_MS) / 1000, UTC).isoformat()
            for j, k in enumerate(KEYS):
                lines.append(
                    f"{tenant.id}\t{d}\t{k}\t{ts}\t{round(20 + (i * 7 + j) % 50 * 0.37, 2)}\n"
                )
        out.append("".join(lines).encode())
    return out


COPY_SQL = "copy telemetry (tenant_id, device_id, key, ts, value_num) from stdin"


def copy_reference(db: harness.Scratch, payloads: list[bytes], rows: int) -> dict[str, float]:
    """One COPY stream of every row in one transaction (the raw ceiling)."""
    with db.owner() as conn, conn.cursor() as cur:
        t0 = time.perf_counter()
        with cur.copy(COPY_SQL) as copy:
            for payload in payloads:
                copy.write(payload)
        conn.commit()
        elapsed = time.perf_counter() - t0
    return {"points": rows, "seconds": round(elapsed, 3), "points_per_s": round(rows / elapsed, 1)}


def copy_reference_batched(
    db: harness.Scratch, payloads: list[bytes], rows: int
) -> dict[str, float]:
    """One committed COPY per batch, like one request each."""
    with db.owner() as conn, conn.cursor() as cur:
        t0 = time.perf_counter()
        for payload in payloads:
            with cur.copy(COPY_SQL) as copy:
                copy.write(payload)
            conn.commit()
        elapsed = time.perf_counter() - t0
    return {"points": rows, "seconds": round(elapsed, 3), "points_per_s": round(rows / elapsed, 1)}


def plot(sweep: list[dict[str, float]], copy_rate: float, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [s["batch_points"] for s in sweep]
    rates = [s["points_per_s"] for s in sweep]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(sizes, rates, marker="o", label="HTTP ingest (median)")
    ax.axhline(copy_rate, color="grey", linestyle="--", label="raw COPY, one stream")
    ax.axhline(50_000, color="tab:red", linestyle=":", label="target 50,000 points/s")
    ax.set_xscale("log")
    ax.set_xlabel("points per request")
    ax.set_ylabel("points stored per second")
    ax.set_title("Batch ingest throughput vs batch size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer points per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--no-access-log", action="store_true", help="serve without access log")
    parser.add_argument("--profile", action="store_true", help="py-spy the server in one more run")
    args = parser.parse_args()
    total = 100_000 if args.quick else 400_000
    sweep_sizes = [10, 100, 1_000, 5_000, 10_000]
    sweep_totals = {10: 10_000, 100: 50_000, 1_000: 100_000, 5_000: 100_000, 10_000: 100_000}
    if args.quick:
        sweep_totals = {k: v // 4 for k, v in sweep_totals.items()}

    with harness.scratch_database("ingest") as db:
        (tenant,) = harness.seed_tenants(db, tenants=1, devices_per_tenant=1_000)
        timeline = Timeline()
        with harness.running_server(db, access_log=not args.no_access_log) as server:
            harness.log("warm-up")
            await send_all(
                server.url, make_batches(tenant, 20_000, 1_000, timeline), args.concurrency
            )
            runs, copies, copies_batched = [], [], []
            for n in range(args.runs):
                batches = make_batches(tenant, total, 1_000, timeline)
                harness.settle(db)
                result = await send_all(server.url, batches, args.concurrency)
                runs.append(result)
                payloads = copy_payloads(tenant, total, 1_000, timeline)
                harness.settle(db)
                copies.append(copy_reference(db, payloads, total))
                payloads = copy_payloads(tenant, total, 1_000, timeline)
                harness.settle(db)
                copies_batched.append(copy_reference_batched(db, payloads, total))
                harness.log(
                    f"run {n + 1}: HTTP {result['points_per_s']:,.0f} points/s "
                    f"(p99 {result['request_p99_ms']} ms per request); COPY one stream "
                    f"{copies[-1]['points_per_s']:,.0f}/s; COPY per batch "
                    f"{copies_batched[-1]['points_per_s']:,.0f}/s"
                )
            sweep = []
            for size in sweep_sizes:
                rates = []
                for _ in range(args.runs):
                    batches = make_batches(tenant, sweep_totals[size], size, timeline)
                    harness.settle(db)
                    rates.append(
                        (await send_all(server.url, batches, args.concurrency))["points_per_s"]
                    )
                sweep.append(
                    {"batch_points": size, "points_per_s": harness.median(rates), "runs": rates}
                )
                harness.log(
                    f"sweep {size:>6} points/request: {harness.median(rates):,.0f} points/s"
                )
            profile = None
            if args.profile:
                raw = harness.RESULTS / "ingest_batch_profile.txt"
                harness.RESULTS.mkdir(parents=True, exist_ok=True)
                spy = harness.start_profile(server.pid, raw, 15)
                await send_all(
                    server.url, make_batches(tenant, total, 1_000, timeline), args.concurrency
                )
                if spy is not None:
                    spy.wait(timeout=60)
                profile = harness.summarize_profile(raw)

    http_rate = harness.median([r["points_per_s"] for r in runs])
    copy_rate = harness.median([c["points_per_s"] for c in copies])
    copy_batched_rate = harness.median([c["points_per_s"] for c in copies_batched])
    summary = {
        "http_points_per_s": http_rate,
        "copy_points_per_s": copy_rate,
        "copy_per_batch_points_per_s": copy_batched_rate,
        "ratio_to_copy": round(http_rate / copy_rate, 3),
        "ratio_to_copy_per_batch": round(http_rate / copy_batched_rate, 3),
        "target_50k_met": http_rate >= 50_000,
        "target_half_copy_met": http_rate >= 0.5 * copy_rate,
    }
    harness.RESULTS.mkdir(parents=True, exist_ok=True)
    plot(sweep, copy_rate, harness.RESULTS / "ingest_batch_sweep.png")
    harness.save(
        "ingest_batch" + ("_no_access_log" if args.no_access_log else ""),
        {
            "setup": {
                "devices": 1_000,
                "batch_points": 1_000,
                "keys_per_timestamp": len(KEYS),
                "points_per_run": total,
                "runs": args.runs,
                "client": f"asyncio httpx, {args.concurrency} concurrent requests",
                "server": "uvicorn --no-access-log" if args.no_access_log else "iiot serve",
            },
            "summary": summary,
            "runs": runs,
            "copy_one_stream": copies,
            "copy_per_batch": copies_batched,
            "sweep": sweep,
            "profile_top": profile,
        },
    )
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
