"""Single-point ingest requests from many devices at once: requests/s and p50/p99 latency.

    .venv/bin/python bench/ingest_single.py [--quick]

The load generator is `wrk` (C, event loop; `apt-get install -y wrk`) with
bench/wrk_requests.lua cycling over 1,000 devices' tokens: each request is the original's
single-message form `{"telemetry": {"temperature": …}}` without a timestamp (server time), sent
with the device's token in `X-API-Key`. One wrk thread, so the generator takes little of the
two cores; 64 connections. Figures are medians of the runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--devices", type=int, default=1_000)
    parser.add_argument("--no-access-log", action="store_true", help="serve without access log")
    parser.add_argument("--profile", action="store_true", help="py-spy the server in one more run")
    args = parser.parse_args()
    duration = 5 if args.quick else 15

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
        with harness.running_server(db, access_log=not args.no_access_log) as server:
            harness.log("warm-up")
            harness.wrk(server.url, requests_file, connections=args.connections, duration_s=3)
            runs = []
            for n in range(args.runs):
                harness.settle(db)
                result = harness.wrk(
                    server.url, requests_file, connections=args.connections, duration_s=duration
                )
                runs.append(result)
                harness.log(
                    f"run {n + 1}: {result['requests_per_s']:,.0f} req/s,"
                    f" p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms,"
                    f" non-2xx {result['non_2xx']}"
                )
            profile = None
            if args.profile:
                raw = harness.RESULTS / "ingest_single_profile.txt"
                spy = harness.start_profile(server.pid, raw, 10)
                harness.wrk(server.url, requests_file, connections=args.connections, duration_s=10)
                if spy is not None:
                    spy.wait(timeout=60)
                profile = harness.summarize_profile(raw)
        with db.owner() as conn:
            stored = conn.execute("select count(*) from telemetry").fetchone()
        requests_file.unlink()

    summary = {
        "requests_per_s": harness.median([r["requests_per_s"] for r in runs]),
        "p50_ms": harness.median([r["p50_ms"] for r in runs]),
        "p99_ms": harness.median([r["p99_ms"] for r in runs]),
        "non_2xx_total": sum(r["non_2xx"] for r in runs),
        "points_stored": stored[0] if stored else None,
    }
    summary["target_2000_rps_met"] = summary["requests_per_s"] >= 2_000
    summary["target_p99_50ms_met"] = summary["p99_ms"] <= 50
    harness.save(
        "ingest_single" + ("_no_access_log" if args.no_access_log else ""),
        {
            "setup": {
                "devices": args.devices,
                "connections": args.connections,
                "seconds_per_run": duration,
                "runs": args.runs,
                "load_generator": "wrk, 1 thread, bench/wrk_requests.lua",
                "server": "uvicorn --no-access-log" if args.no_access_log else "iiot serve",
            },
            "summary": summary,
            "runs": runs,
            "profile_top": profile,
        },
    )
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
