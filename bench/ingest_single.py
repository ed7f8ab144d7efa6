"""Single-point ingest requests from many devices at once: requests/s and p50/p99 latency.

    .venv/bin/python bench/ingest_single.py [--quick]

The load generator is `wrk` (C, event loop; `apt-get install -y wrk`) with
bench/wrk_requests.lua cycling over 1,000 devices' tokens: each request is the original's
single-message form `{"telemetry": {"temperature": …}}` without a timestamp (server time), sent
with the device's token in `X-API-Key`. One wrk thread, so the generator takes little of the
two cores; 64 connections. Measured against `iiot serve` with 1 and with 2 worker processes
and, in the same run, against the framework reference: bench/minimal_app.py (a minimal
FastAPI app, one uvicorn process, one `INSERT … ON CONFLICT DO NOTHING` per request) driven
by the same wrk command. Figures are medians of the runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402


@contextmanager
def minimal_server(db: harness.Scratch) -> Iterator[harness.Server]:
    """bench/minimal_app.py under one uvicorn process, on the scratch database (as owner)."""
    port = harness.free_port()
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "IIOT_MINIMAL_DSN": db.admin_url}
    process = subprocess.Popen(  # noqa: S603
        [
            str(bin_dir / "uvicorn"),
            "--factory",
            "minimal_app:create",
            "--app-dir",
            str(harness.ROOT / "bench"),
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("minimal app did not start") from None
                time.sleep(0.2)
        yield harness.Server(url=url, process=process, data_dir=harness.ROOT)
    finally:
        process.terminate()
        process.wait(timeout=15)


def measure(
    server: harness.Server,
    requests_file: Path,
    args: argparse.Namespace,
    duration: int,
    label: str,
    db: harness.Scratch,
) -> list[dict[str, Any]]:
    harness.log(f"{label}: warm-up")
    harness.wrk(server.url, requests_file, connections=args.connections, duration_s=3)
    runs = []
    cpu0 = harness.process_cpu_seconds(server.pid)
    db_cpu0 = harness.database_cpu_seconds(db)
    for n in range(args.runs):
        result = harness.wrk(
            server.url, requests_file, connections=args.connections, duration_s=duration
        )
        runs.append(result)
        harness.log(
            f"{label} run {n + 1}: {result['requests_per_s']:,.0f} req/s,"
            f" p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms,"
            f" non-2xx {result['non_2xx']}"
        )
    cpu = harness.process_cpu_seconds(server.pid) - cpu0
    db_cpu = harness.database_cpu_seconds(db) - db_cpu0
    requests = sum(r["requests"] for r in runs)
    for r in runs:
        r["server_cpu_ms_per_request"] = round(cpu / max(requests, 1) * 1000, 3)
        r["database_cpu_ms_per_request"] = round(db_cpu / max(requests, 1) * 1000, 3)
    return runs


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "requests_per_s": harness.median([r["requests_per_s"] for r in runs]),
        "p50_ms": harness.median([r["p50_ms"] for r in runs]),
        "p99_ms": harness.median([r["p99_ms"] for r in runs]),
        "non_2xx_total": sum(r["non_2xx"] for r in runs),
        "socket_errors_total": sum(r["socket_errors"] for r in runs),
        "server_cpu_ms_per_request": runs[0]["server_cpu_ms_per_request"],
        "database_cpu_ms_per_request": runs[0]["database_cpu_ms_per_request"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--devices", type=int, default=1_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-access-log", action="store_true", help="serve without access log")
    parser.add_argument("--profile", action="store_true", help="py-spy one worker in one more run")
    args = parser.parse_args()
    duration = 5 if args.quick else 15

    results: dict[str, Any] = {}
    profile = None
    with harness.scratch_database("single") as db:
        (tenant,) = harness.seed_tenants(db, tenants=1, devices_per_tenant=args.devices)
        harness.RESULTS.mkdir(parents=True, exist_ok=True)
        requests_file = harness.write_requests(
            harness.RESULTS / "ingest_single_requests.tsv",
            [
                (
                    "POST",
                    "/api/v1/telemetry",
                    {"X-API-Key": token, "Content-Type": "application/json"},
                    json.dumps({"telemetry": {"temperature": 20.0 + i % 100 / 10}}),
                )
                for i, token in enumerate(tenant.device_tokens)
            ],
        )
        for workers in args.workers:
            with harness.running_server(
                db, access_log=not args.no_access_log, workers=workers
            ) as server:
                harness.settle(db)
                results[f"iiot_{workers}_workers"] = measure(
                    server, requests_file, args, duration, f"iiot --workers {workers}", db
                )
                if args.profile and workers == 1:
                    raw = harness.RESULTS / "ingest_single_profile.txt"
                    spy = harness.start_profile(server.pid, raw, 10)
                    harness.wrk(
                        server.url, requests_file, connections=args.connections, duration_s=10
                    )
                    if spy is not None:
                        spy.wait(timeout=60)
                    profile = harness.summarize_profile(raw)
        with minimal_server(db) as server:
            harness.settle(db)
            results["minimal_fastapi"] = measure(
                server, requests_file, args, duration, "minimal FastAPI", db
            )
        with db.owner() as conn:
            stored = conn.execute("select count(*) from telemetry").fetchone()
        requests_file.unlink()

    summary: dict[str, Any] = {name: summarize(runs) for name, runs in results.items()}
    reference = summary["minimal_fastapi"]["requests_per_s"]
    for workers in args.workers:
        s = summary[f"iiot_{workers}_workers"]
        s["ratio_to_minimal_fastapi"] = round(s["requests_per_s"] / reference, 3)
    one = summary.get("iiot_1_workers")
    if one is not None:
        summary["target_2000_rps_one_process_met"] = one["requests_per_s"] >= 2_000
        summary["target_p99_50ms_one_process_met"] = one["p99_ms"] <= 50
        summary["target_0_7_minimal_met"] = one["ratio_to_minimal_fastapi"] >= 0.7
    summary["points_stored"] = stored[0] if stored else None
    harness.save(
        "ingest_single" + ("_no_access_log" if args.no_access_log else ""),
        {
            "setup": {
                "devices": args.devices,
                "connections": args.connections,
                "seconds_per_run": duration,
                "runs": args.runs,
                "load_generator": "wrk, 1 thread, bench/wrk_requests.lua",
                "servers": [f"iiot serve --workers {w}" for w in args.workers]
                + ["bench/minimal_app.py (uvicorn, 1 process)"],
            },
            "summary": summary,
            "runs": results,
            "profile_top": profile,
        },
    )
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
