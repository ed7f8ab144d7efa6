"""Tenant stats and quotas: latency with 10,000 stored points versus 10 million.

    .venv/bin/python bench/stats_quotas.py [--quick]

100 tenants with 100 devices each (10,000 devices). Phase 1 stores 10,000 points; phase 2 adds
10 million more (COPY as the owner, spread over the last week's daily partitions, with the
matching per-day usage counters). In each phase `GET /tenants/{id}/stats` and
`GET /tenants/{id}/quotas` are called by 16 concurrent clients (wrk, 16 connections, cycling
over the 100 tenants, each request with that tenant's admin token): p50/p99 per endpoint,
medians of the runs, and the ratio of the p50s between the phases.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

TENANTS = 100
DEVICES_PER_TENANT = 100
KEYS = ["temperature", "pressure", "vibration", "current", "state"]
LIMITS = {
    "max_devices": 500,
    "max_users": 50,
    "max_telemetry_points_per_day": 50_000_000,
    "max_retention_days": 90,
}
ENDPOINTS = ("stats", "quotas")


def load_points(
    db: harness.Scratch,
    tenants: list[harness.SeededTenant],
    devices: int,
    timestamps: list[datetime],
) -> int:
    """COPY `devices` x len(KEYS) x len(timestamps) points per tenant; bump the usage counters."""
    ts_text = [ts.isoformat() for ts in timestamps]
    per_day = Counter(ts.date() for ts in timestamps)
    total = 0
    with db.owner() as conn, conn.cursor() as cur:
        cur.execute("set synchronous_commit = off")
        series = {
            t.id: harness.ensure_series(conn, t.id, t.device_ids[:devices], KEYS) for t in tenants
        }
        with cur.copy("copy telemetry (tenant_id, series_id, ts, value_num) from stdin") as copy:
            for t in tenants:
                tid = str(t.id)
                for d in t.device_ids[:devices]:
                    lines = [
                        f"{tid}\t{series[t.id][(d, k)]}\t{ts}\t{(i * 13 + j) % 97 * 0.5}\n"
                        for j, k in enumerate(KEYS)
                        for i, ts in enumerate(ts_text)
                    ]
                    copy.write("".join(lines).encode())
                    total += len(lines)
        for t in tenants:
            for day, count in per_day.items():
                cur.execute(
                    "insert into tenant_usage_daily (tenant_id, day, telemetry_points)"
                    " values (%s, %s, %s) on conflict (tenant_id, day) do update"
                    " set telemetry_points = tenant_usage_daily.telemetry_points"
                    " + excluded.telemetry_points",
                    (t.id, day, count * devices * len(KEYS)),
                )
        conn.commit()
    with db.owner() as conn:
        conn.autocommit = True
        conn.execute("vacuum analyze telemetry")
        conn.execute("vacuum analyze tenant_usage_daily")
        # Flush the bulk load's dirty pages now, not during the read-only measurement.
        conn.execute("checkpoint")
    return total


def transactions(db: harness.Scratch) -> int:
    """Transactions committed or rolled back in the scratch database so far."""
    with db.owner() as conn:
        row = conn.execute(
            "select xact_commit + xact_rollback from pg_stat_database"
            " where datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


def measure(
    db: harness.Scratch,
    server: harness.Server,
    tenants: list[harness.SeededTenant],
    tokens: dict[uuid.UUID, str],
    runs: int,
    duration: int,
) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for endpoint in ENDPOINTS:
        requests_file = harness.write_requests(
            harness.RESULTS / f"stats_quotas_{endpoint}.tsv",
            [
                (
                    "GET",
                    f"/api/v1/tenants/{t.id}/{endpoint}",
                    {"Authorization": f"Bearer {tokens[t.id]}"},
                    "",
                )
                for t in tenants
            ],
        )
        harness.wrk(server.url, requests_file, connections=16, duration_s=2)  # warm-up
        results: list[dict[str, Any]] = []
        discarded: list[dict[str, Any]] = []
        while len(results) < runs:
            cpu0, xacts0 = harness.process_cpu_seconds(server.pid), transactions(db)
            db_cpu0 = harness.database_cpu_seconds(db)
            r = harness.wrk(server.url, requests_file, connections=16, duration_s=duration)
            db_cpu = harness.database_cpu_seconds(db) - db_cpu0
            cpu, xacts = harness.process_cpu_seconds(server.pid) - cpu0, transactions(db) - xacts0
            # Per request: the server's CPU, and the database's transactions (every
            # transaction of the database in the run: the server's idle jobs included).
            r["server_cpu_ms_per_request"] = round(1000 * cpu / max(r["requests"], 1), 3)
            r["transactions_per_request"] = round(xacts / max(r["requests"], 1), 3)
            # The database's backends (the server's connections, which last through the run).
            r["database_cpu_ms_per_request"] = round(1000 * db_cpu / max(r["requests"], 1), 3)
            if r["non_2xx"] or r["socket_errors"]:
                # On a shared machine PostgreSQL can run out of connection slots (503): such a
                # run is repeated and recorded as discarded (up to three per run).
                harness.log(f"  {endpoint}: run with errors, repeated: {r}")
                discarded.append(r)
                if len(discarded) > 3 * runs:
                    raise RuntimeError(f"{endpoint}: errors during the runs: {discarded}")
                continue
            results.append(r)
        requests_file.unlink()
        out[endpoint] = {
            "p50_ms": harness.median([r["p50_ms"] for r in results]),
            "p99_ms": harness.median([r["p99_ms"] for r in results]),
            "requests_per_s": harness.median([r["requests_per_s"] for r in results]),
            "server_cpu_ms_per_request": harness.median(
                [r["server_cpu_ms_per_request"] for r in results]
            ),
            "transactions_per_request": harness.median(
                [r["transactions_per_request"] for r in results]
            ),
            "database_cpu_ms_per_request": harness.median(
                [r["database_cpu_ms_per_request"] for r in results]
            ),
            "runs": results,
            "discarded_runs": discarded,
        }
        harness.log(
            f"  {endpoint}: p50 {out[endpoint]['p50_ms']} ms, p99 {out[endpoint]['p99_ms']} ms, "
            f"{out[endpoint]['requests_per_s']} req/s, "
            f"{out[endpoint]['server_cpu_ms_per_request']} ms server CPU, "
            f"{out[endpoint]['database_cpu_ms_per_request']} ms database CPU and "
            f"{out[endpoint]['transactions_per_request']} transactions per request"
        )
    return out


def check_endpoints(
    server: harness.Server, tenant: harness.SeededTenant, token: str
) -> dict[str, object]:
    bodies: dict[str, object] = {}
    for endpoint in ENDPOINTS:
        r = httpx.get(
            f"{server.url}/api/v1/tenants/{tenant.id}/{endpoint}",
            headers={"Authorization": f"Bearer {token}"},
        )
        if r.status_code != 200:
            raise SystemExit(
                f"GET /tenants/{{id}}/{endpoint} answered {r.status_code}: {r.text[:300]}"
            )
        bodies[endpoint] = r.json()
    return bodies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1M points instead of 10M, short runs")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-access-log", action="store_true", help="serve without access log")
    parser.add_argument("--profile", action="store_true", help="py-spy the server in one more run")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes (`iiot serve --workers N`; production's default is one per "
        "core); more than one needs IIOT_REDIS_URL",
    )
    args = parser.parse_args()
    duration = 5 if args.quick else 10
    big_timestamps = 20 if args.quick else 200

    now = datetime.now(UTC).replace(microsecond=0)
    # Phase 1: one point per (device, key) for 20 devices of each tenant, an hour ago.
    small_ts = [now - timedelta(hours=1)]
    # Phase 2: every device and key, timestamps spread over the last 6.5 days (daily partitions
    # exist for the last week), none equal to phase 1's.
    span = timedelta(days=6.5)
    big_ts = [now - span + span * (i + 0.5) / big_timestamps for i in range(big_timestamps)]

    with harness.scratch_database("stats") as db:
        t0 = time.perf_counter()
        tenants = harness.seed_tenants(
            db,
            tenants=TENANTS,
            devices_per_tenant=DEVICES_PER_TENANT,
            limits=LIMITS,
            with_tokens=False,
        )
        harness.log(
            f"seeded {TENANTS} tenants, {TENANTS * DEVICES_PER_TENANT} devices"
            f" in {time.perf_counter() - t0:.1f} s"
        )
        tokens = {t.id: harness.access_token(t.user_id, t.id) for t in tenants if t.user_id}
        small = load_points(db, tenants, 20, small_ts)
        harness.log(f"phase 1: {small:,} points stored")
        with harness.running_server(
            db, access_log=not args.no_access_log, workers=args.workers
        ) as server:
            sample_small = check_endpoints(server, tenants[0], tokens[tenants[0].id])
            harness.settle(db)
            phase1 = measure(db, server, tenants, tokens, args.runs, duration)
            t0 = time.perf_counter()
            big = load_points(db, tenants, DEVICES_PER_TENANT, big_ts)
            harness.log(f"phase 2: {big:,} more points stored in {time.perf_counter() - t0:.0f} s")
            sample_big = check_endpoints(server, tenants[0], tokens[tenants[0].id])
            harness.settle(db)
            phase2 = measure(db, server, tenants, tokens, args.runs, duration)
            profile = None
            if args.profile:
                raw = harness.RESULTS / "stats_quotas_profile.txt"
                spy = harness.start_profile(server.pid, raw, 10)
                requests_file = harness.write_requests(
                    harness.RESULTS / "stats_quotas_profile.tsv",
                    [
                        (
                            "GET",
                            f"/api/v1/tenants/{t.id}/{e}",
                            {"Authorization": f"Bearer {tokens[t.id]}"},
                            "",
                        )
                        for t in tenants
                        for e in ENDPOINTS
                    ],
                )
                harness.wrk(server.url, requests_file, connections=16, duration_s=10)
                requests_file.unlink()
                if spy is not None:
                    spy.wait(timeout=60)
                profile = harness.summarize_profile(raw)
        with db.owner() as conn:
            stored = conn.execute("select count(*) from telemetry").fetchone()

    summary: dict[str, object] = {
        "points_small": small,
        "points_large": stored[0] if stored else None,
    }
    for endpoint in ENDPOINTS:
        p50_small = float(phase1[endpoint]["p50_ms"])  # type: ignore[arg-type]
        p50_big = float(phase2[endpoint]["p50_ms"])  # type: ignore[arg-type]
        p99_big = float(phase2[endpoint]["p99_ms"])  # type: ignore[arg-type]
        ratio = round(p50_big / p50_small, 3)
        summary[endpoint] = {
            "p50_ms_small": p50_small,
            "p99_ms_small": phase1[endpoint]["p99_ms"],
            "p50_ms_large": p50_big,
            "p99_ms_large": p99_big,
            "p50_ratio": ratio,
            "target_p99_20ms_met": max(p99_big, float(phase1[endpoint]["p99_ms"])) <= 20,  # type: ignore[arg-type]
            "target_ratio_1_5_met": ratio <= 1.5,
        }
    harness.save(
        "stats_quotas"
        + ("_no_access_log" if args.no_access_log else "")
        + (f"_{args.workers}_workers" if args.workers != 1 else ""),
        {
            "setup": {
                "tenants": TENANTS,
                "devices": TENANTS * DEVICES_PER_TENANT,
                "concurrent_clients": 16,
                "seconds_per_run": duration,
                "runs": args.runs,
                "load_generator": "wrk, 1 thread, 16 connections, bench/wrk_requests.lua",
                "server": f"iiot serve --workers {args.workers}"
                + (" --no-access-log" if args.no_access_log else ""),
            },
            "summary": summary,
            "phase_small": phase1,
            "phase_large": phase2,
            "sample_answers": {"small": sample_small, "large": sample_big},
            "profile_top": profile,
        },
    )
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
