"""Sustained batch ingest over HTTP into one day's partition, with the physical references.

    .venv/bin/python bench/ingest_batch.py [--quick] [--points N] [--workers N] [--profile]

1,000 devices, one device token each; every request is one device's batch of 1,000 points
(100 timestamps x 10 keys, so 10,000 series) sent with its token over `--concurrency`
kept-alive connections, one request in flight on each (`raw_http.py`: asyncio streams; each
chunk's requests are rendered before its clock starts, every batch is unique and every answer
is checked: 201, `points == 1000`, `duplicates == 0`). The load generator's own CPU while
sending is reported per 1,000 points beside the server's. Each run starts from a fresh
database and stores `--points` points (default 5,000,000) with timestamps from today's 00:10
UTC on, all in today's partition; the rate is recorded for every 250,000 points, so the rate
of the last million is reported beside the overall one, and
bench/results/ingest_batch_sustained.png plots points/s against stored points.

References, measured in the same run right after the HTTP part (the server idle), on the same
database server: `COPY` of
`--reference-rows` rows (default 3,000,000) shaped `(series_id int8, ts timestamptz, value
float8)`, one committed COPY per 1,000 rows, pre-rendered so the client costs nothing, into
(a) a bare heap and (b) the same heap with `primary key (series_id, ts)`. Server CPU (the
server's processes, user + system) is reported per 1,000 points. The heap + PK reference is
also measured before the server starts, to show what an idle server costs the database.
Figures are medians of the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
import raw_http  # noqa: E402

KEYS = [f"k{i}" for i in range(10)]
STEP_MS = 10  # between two timestamps of one batch
CHUNK_POINTS = 250_000
BATCH_POINTS = 1_000


@dataclass(frozen=True)
class Batch:
    token: str
    device_id: uuid.UUID
    body: bytes
    points: int


def day_start_ms() -> int:
    """Today's 00:10 UTC: 5 M points at one second per batch end before 01:40 UTC."""
    today = datetime.now(UTC).replace(hour=0, minute=10, second=0, microsecond=0)
    return int(today.timestamp() * 1000)


def batches(tenant: harness.SeededTenant, first: int, count: int, base_ms: int) -> list[Batch]:
    """Batches number `first` .. `first + count - 1`; batch b covers its own second."""
    items = BATCH_POINTS // len(KEYS)
    out = []
    for b in range(first, first + count):
        d = b % len(tenant.device_ids)
        start = base_ms + b * items * STEP_MS
        points = [
            {
                "ts": start + i * STEP_MS,
                "values": {k: round(20 + (i * 7 + j) % 50 * 0.37, 2) for j, k in enumerate(KEYS)},
            }
            for i in range(items)
        ]
        out.append(
            Batch(
                tenant.device_tokens[d],
                tenant.device_ids[d],
                json.dumps({"points": points}).encode(),
                BATCH_POINTS,
            )
        )
    return out


INGEST_PATH = "/api/v1/telemetry"


def rendered(url: str, todo: list[Batch]) -> list[bytes]:
    """Each batch as the complete HTTP request (head + body), rendered before the clock runs."""
    return [
        raw_http.render_post(
            url,
            INGEST_PATH,
            {"X-API-Key": b.token, "Content-Type": "application/json"},
            b.body,
        )
        for b in todo
    ]


def checked(batch: Batch, answer: raw_http.Answer) -> int:
    """The points an answer stored; raises unless it is a 201 storing the whole batch."""
    if answer.status != 201:
        raise RuntimeError(f"ingest answered {answer.status}: {answer.body[:500]!r}")
    body = json.loads(answer.body)
    if body["points"] != batch.points or body["duplicates"] != 0:
        raise RuntimeError(f"unexpected ingest answer {body}")
    return int(body["points"])


async def send(
    connections: list[raw_http.Connection],
    todo: list[Batch],
    requests: list[bytes],
    latencies: list[float],
) -> int:
    """Send the pre-rendered `requests` (one per batch of `todo`), one in flight per kept-alive
    connection; every answer is checked."""
    pairs = list(zip(todo, requests, strict=True))
    return await raw_http.run(
        "",
        pairs,
        lambda pair: pair[1],
        lambda pair, answer: checked(pair[0], answer),
        len(connections),
        latencies,
        connections,
    )


async def sustained(
    server: harness.Server,
    tenant: harness.SeededTenant,
    total: int,
    concurrency: int,
    profile_raw: Path | None,
) -> dict[str, Any]:
    base = day_start_ms()
    per_chunk = CHUNK_POINTS // BATCH_POINTS
    curve: list[dict[str, float]] = []
    latencies: list[float] = []
    stored = 0
    busy = 0.0
    client_cpu = 0.0
    spy = None
    connections = await raw_http.open_connections(server.url, concurrency)
    try:
        cpu0 = harness.process_cpu_seconds(server.pid)
        for chunk in range(total // CHUNK_POINTS):
            todo = batches(tenant, chunk * per_chunk, per_chunk, base)
            requests = rendered(server.url, todo)
            if profile_raw is not None and stored + CHUNK_POINTS >= total - 1_000_000 and not spy:
                spy = harness.start_profile(server.pid, profile_raw, 20)
            c0 = time.process_time()
            t0 = time.perf_counter()
            n = await send(connections, todo, requests, latencies)
            elapsed = time.perf_counter() - t0
            client_cpu += time.process_time() - c0
            busy += elapsed
            stored += n
            curve.append(
                {"stored": stored, "points_per_s": round(n / elapsed, 1), "seconds": elapsed}
            )
            harness.log(f"  {stored:>10,} stored: {n / elapsed:>9,.0f} points/s")
        cpu = harness.process_cpu_seconds(server.pid) - cpu0
    finally:
        for c in connections:
            c.close()
    if spy is not None:
        spy.wait(timeout=120)
    last = [c for c in curve if c["stored"] > total - 1_000_000]
    last_points = CHUNK_POINTS * len(last)
    return {
        "points": stored,
        "seconds": round(busy, 2),
        "points_per_s": round(stored / busy, 1),
        "last_million_points_per_s": round(last_points / sum(c["seconds"] for c in last), 1),
        "first_million_points_per_s": round(
            1_000_000 / sum(c["seconds"] for c in curve[: 1_000_000 // CHUNK_POINTS]), 1
        )
        if stored >= 1_000_000
        else None,
        "server_cpu_seconds": round(cpu, 2),
        "server_cpu_ms_per_1000_points": round(cpu / stored * 1_000_000, 2),
        # The load generator's own CPU while sending (the bodies are rendered before).
        "client_cpu_ms_per_1000_points": round(client_cpu / stored * 1_000_000, 2),
        "request_p50_ms": round(harness.percentile(latencies, 0.5) * 1000, 2),
        "request_p99_ms": round(harness.percentile(latencies, 0.99) * 1000, 2),
        "curve": curve,
    }


class Timeline:
    """Hands out disjoint time windows, so no point is ever a duplicate of another (used by
    bench/alert_latency.py for batches of any size)."""

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
    out = []
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
        out.append(Batch(tenant.device_tokens[d], tenant.device_ids[d], body, items * len(KEYS)))
    return out


async def send_all(url: str, todo: list[Batch], concurrency: int) -> dict[str, float]:
    """Send `todo` with `concurrency` requests in flight; rate and latency."""
    latencies: list[float] = []
    requests = rendered(url, todo)
    connections = await raw_http.open_connections(url, concurrency)
    try:
        t0 = time.perf_counter()
        stored = await send(connections, todo, requests, latencies)
        elapsed = time.perf_counter() - t0
    finally:
        for c in connections:
            c.close()
    return {
        "points": stored,
        "seconds": round(elapsed, 3),
        "points_per_s": round(stored / elapsed, 1),
        "requests_per_s": round(len(todo) / elapsed, 1),
        "request_p50_ms": round(harness.percentile(latencies, 0.5) * 1000, 2),
        "request_p99_ms": round(harness.percentile(latencies, 0.99) * 1000, 2),
    }


def reference_payloads(rows: int) -> Iterator[bytes]:
    """`rows` rows of 10,000 series, 1,000 per COPY: one series' 100 timestamps x 10 keys."""
    base = datetime.now(UTC).replace(hour=0, minute=10, second=0, microsecond=0)
    for b in range(rows // BATCH_POINTS):
        d = b % 1_000
        start = base + timedelta(seconds=b)
        lines = []
        for i in range(BATCH_POINTS // len(KEYS)):
            ts = (start + timedelta(milliseconds=i * STEP_MS)).isoformat()
            for j in range(len(KEYS)):
                value = round(20 + (i * 7 + j) % 50 * 0.37, 2)
                lines.append(f"{d * 10 + j + 1}\t{ts}\t{value}\n")
        yield "".join(lines).encode()


class ActivitySampler:
    """Samples, every 0.5 s, what else is active in the database during a reference COPY
    (autovacuum workers, the server's backends): the evidence for what slows it down."""

    def __init__(self, db: harness.Scratch, own_pid: int) -> None:
        import threading

        self.db = db
        self.own_pid = own_pid
        self.seen: dict[str, int] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(harness.PG_ADMIN, autocommit=True) as conn:
            while not self._stop.wait(0.5):
                self.samples += 1
                rows = conn.execute(
                    "select backend_type, coalesce(left(query, 60), '') from pg_stat_activity"
                    " where datname = %s and state <> 'idle' and pid <> pg_backend_pid()"
                    " and pid <> %s",
                    (self.db.name, self.own_pid),
                ).fetchall()
                for backend, query in rows:
                    label = f"{backend}: {query}"
                    self.seen[label] = self.seen.get(label, 0) + 1

    def __enter__(self) -> ActivitySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def physical_reference(db: harness.Scratch, payloads: list[bytes], with_pk: bool) -> dict[str, Any]:
    """One committed COPY per 1,000 rows into a fresh heap (with or without the key)."""
    table = "bench_ref_pk" if with_pk else "bench_ref_heap"
    key = ", primary key (series_id, ts)" if with_pk else ""
    with db.owner() as conn, conn.cursor() as cur:
        cur.execute(f"drop table if exists {table}")
        cur.execute(
            f"create table {table} (series_id int8 not null, ts timestamptz not null, "
            f"value float8{key})"
        )
        conn.commit()
        rows = 0
        with ActivitySampler(db, conn.info.backend_pid) as activity:
            t0 = time.perf_counter()
            for payload in payloads:
                with cur.copy(f"copy {table} (series_id, ts, value) from stdin") as copy:
                    copy.write(payload)
                conn.commit()
                rows += BATCH_POINTS
            elapsed = time.perf_counter() - t0
        cur.execute(f"drop table {table}")
        conn.commit()
    return {
        "rows": rows,
        "seconds": round(elapsed, 2),
        "rows_per_s": round(rows / elapsed, 1),
        "other_activity_samples": activity.samples,
        "other_activity": activity.seen,
    }


def plot(runs: list[dict[str, Any]], heap: float, pk: float, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for n, run in enumerate(runs, 1):
        xs = [c["stored"] / 1e6 for c in run["curve"]]
        ys = [c["points_per_s"] for c in run["curve"]]
        ax.plot(xs, ys, marker=".", label=f"HTTP ingest, run {n}")
    ax.axhline(heap, color="grey", linestyle="--", label=f"COPY bare heap {heap:,.0f}/s")
    ax.axhline(pk, color="black", linestyle="-.", label=f"COPY heap + PK {pk:,.0f}/s")
    ax.axhline(60_000, color="tab:red", linestyle=":", label="target 60,000 points/s")
    ax.set_xlabel("points stored in the day's partition (millions)")
    ax.set_ylabel("points stored per second (per 250k chunk)")
    ax.set_title("Sustained batch ingest, 1,000-point requests (shared 2-vCPU machine)")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500,000 points, 300,000 rows")
    parser.add_argument("--points", type=int, default=5_000_000)
    parser.add_argument("--reference-rows", type=int, default=3_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--no-access-log", action="store_true", help="serve without access log")
    parser.add_argument("--profile", action="store_true", help="py-spy the last million (run 1)")
    parser.add_argument("--name", default=None, help="results file name")
    args = parser.parse_args()
    total = 500_000 if args.quick else args.points
    ref_rows = 300_000 if args.quick else args.reference_rows

    runs, heaps, pks, quiet_pks = [], [], [], []
    harness.log(f"rendering {ref_rows:,} reference rows")
    payloads = list(reference_payloads(ref_rows))
    profile_raw = harness.RESULTS / "ingest_batch_profile.txt" if args.profile else None
    harness.RESULTS.mkdir(parents=True, exist_ok=True)
    for n in range(args.runs):
        with harness.scratch_database("ingest") as db:
            (tenant,) = harness.seed_tenants(db, tenants=1, devices_per_tenant=1_000)
            # The same reference with no server running, to compare with the one measured
            # while the server idles after its ingest run.
            quiet_pk = physical_reference(db, payloads, with_pk=True)
            with harness.running_server(
                db, access_log=not args.no_access_log, workers=args.workers
            ) as server:
                harness.settle(db)
                run = await sustained(
                    server, tenant, total, args.concurrency, profile_raw if n == 0 else None
                )
                harness.settle(db)
                heap = physical_reference(db, payloads, with_pk=False)
                harness.settle(db)
                pk = physical_reference(db, payloads, with_pk=True)
        runs.append(run)
        quiet_pks.append(quiet_pk)
        heaps.append(heap)
        pks.append(pk)
        harness.log(
            f"run {n + 1}: HTTP {run['points_per_s']:,.0f} points/s overall, last million "
            f"{run['last_million_points_per_s']:,.0f}/s, server CPU "
            f"{run['server_cpu_ms_per_1000_points']} ms per 1,000 points (client "
            f"{run['client_cpu_ms_per_1000_points']} ms); COPY bare heap "
            f"{heap['rows_per_s']:,.0f}/s, heap + PK {pk['rows_per_s']:,.0f}/s "
            f"(no server running: {quiet_pk['rows_per_s']:,.0f}/s)"
        )

    overall = harness.median([r["points_per_s"] for r in runs])
    last = harness.median([r["last_million_points_per_s"] for r in runs])
    heap_rate = harness.median([h["rows_per_s"] for h in heaps])
    pk_rate = harness.median([p["rows_per_s"] for p in pks])
    summary = {
        "http_points_per_s": overall,
        "http_last_million_points_per_s": last,
        "server_cpu_ms_per_1000_points": harness.median(
            [r["server_cpu_ms_per_1000_points"] for r in runs]
        ),
        "client_cpu_ms_per_1000_points": harness.median(
            [r["client_cpu_ms_per_1000_points"] for r in runs]
        ),
        "copy_bare_heap_rows_per_s": heap_rate,
        "copy_heap_pk_rows_per_s": pk_rate,
        "copy_heap_pk_no_server_rows_per_s": harness.median([q["rows_per_s"] for q in quiet_pks]),
        "ratio_last_million_to_bare_heap": round(last / heap_rate, 3),
        "ratio_last_million_to_heap_pk": round(last / pk_rate, 3),
        "target_60k_met": last >= 60_000,
        "target_120k_met": last >= 120_000,
        "target_0_3_bare_heap_met": last >= 0.3 * heap_rate,
    }
    name = args.name or ("ingest_batch" + (f"_{args.workers}_workers" if args.workers > 1 else ""))
    plot(runs, heap_rate, pk_rate, harness.RESULTS / f"{name}_sustained.png")
    harness.save(
        name,
        {
            "setup": {
                "devices": 1_000,
                "series": 10_000,
                "batch_points": BATCH_POINTS,
                "points_per_run": total,
                "reference_rows": ref_rows,
                "runs": args.runs,
                "client": f"asyncio streams (bench/raw_http.py), {args.concurrency} kept-alive "
                "connections, requests rendered before timing",
                "server": f"iiot serve --workers {args.workers}"
                + (" --no-access-log" if args.no_access_log else ""),
            },
            "summary": summary,
            "runs": runs,
            "copy_bare_heap": heaps,
            "copy_heap_pk": pks,
            "copy_heap_pk_no_server": quiet_pks,
            "profile_top": harness.summarize_profile(profile_raw) if profile_raw else None,
        },
    )
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
