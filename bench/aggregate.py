"""Aggregate query: one day of 1 Hz data of one key into 1-minute buckets.

    .venv/bin/python bench/aggregate.py [--quick]

One device holds yesterday's full UTC day at 1 Hz for two keys (172,800 points, COPY as the
owner); the query aggregates one of them (86,400 points) into 1,440 one-minute averages.
Timed through the HTTP API (`GET /api/v1/telemetry/aggregate`, sequential requests from one
client, answer checked) and as the repository's SQL alone (the application role in a tenant
transaction, the same statement text). Figures are medians over the runs; the query plan is
saved next to the JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

from iiot.db.setup import sqlalchemy_url  # noqa: E402
from iiot.telemetry.query_repository import aggregate_statement  # noqa: E402

KEYS = ("power", "speed")


def load_day(db: harness.Scratch, tenant: harness.SeededTenant, day: datetime) -> int:
    device = tenant.device_ids[0]
    with db.owner() as conn, conn.cursor() as cur:
        series = harness.ensure_series(conn, tenant.id, [device], KEYS)
        with cur.copy("copy telemetry (tenant_id, series_id, ts, value_num) from stdin") as copy:
            for key in KEYS:
                prefix = f"{tenant.id}\t{series[(device, key)]}\t"
                lines = [
                    f"{prefix}{(day + timedelta(seconds=s)).isoformat()}\t{(s * 37) % 1000 / 10}\n"
                    for s in range(86_400)
                ]
                copy.write("".join(lines).encode())
        conn.commit()
    with db.owner() as conn:
        conn.autocommit = True
        conn.execute("vacuum analyze telemetry")
    return 86_400 * len(KEYS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-access-log", action="store_true", help="serve without access log")
    parser.add_argument("--profile", action="store_true", help="py-spy the server in one more run")
    args = parser.parse_args()
    per_run = 5 if args.quick else 20

    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    day = today - timedelta(days=1)
    params = {
        "device_id": None,
        "key": KEYS[0],
        "interval": "1m",
        "fn": "avg",
        "start": day.isoformat().replace("+00:00", "Z"),
        "end": today.isoformat().replace("+00:00", "Z"),
    }

    with harness.scratch_database("aggregate") as db:
        (tenant,) = harness.seed_tenants(db, tenants=1, devices_per_tenant=1, with_tokens=False)
        stored = load_day(db, tenant, day)
        harness.log(f"{stored:,} points stored for {day:%Y-%m-%d}")
        params["device_id"] = str(tenant.device_ids[0])
        token = harness.access_token(tenant.user_id, tenant.id)  # type: ignore[arg-type]

        # The SQL alone, as the application role inside a tenant transaction.
        engine = create_engine(sqlalchemy_url(db.app_url))
        statement = aggregate_statement("avg")
        sql_params = {
            "tenant_id": tenant.id,
            "device_id": tenant.device_ids[0],
            "key": KEYS[0],
            "start": day,
            "end": today,
            "width": timedelta(minutes=1),
        }
        sql_runs: list[list[float]] = []
        with engine.connect() as conn:
            conn.execute(
                text("select set_config('app.tenant_id', :t, false)"), {"t": str(tenant.id)}
            )
            conn.execute(statement, sql_params).fetchall()  # warm-up
            for _ in range(args.runs):
                times = []
                for _ in range(per_run):
                    t0 = time.perf_counter()
                    buckets = json.loads(conn.execute(statement, sql_params).scalar_one())
                    times.append((time.perf_counter() - t0) * 1000)
                    if len(buckets) != 1440:
                        raise RuntimeError(f"expected 1440 buckets, got {len(buckets)}")
                sql_runs.append(times)
            plan = (
                conn.execute(text("explain (analyze, buffers) " + statement.text), sql_params)
                .scalars()
                .all()
            )
            conn.rollback()
        engine.dispose()

        http_runs: list[list[float]] = []
        headers = {"Authorization": f"Bearer {token}"}
        with (
            harness.running_server(db, access_log=not args.no_access_log) as server,
            httpx.Client(base_url=server.url, headers=headers) as client,
        ):
            for _ in range(3):  # warm-up
                client.get("/api/v1/telemetry/aggregate", params=params)
            for _ in range(args.runs):
                times = []
                for _ in range(per_run):
                    t0 = time.perf_counter()
                    r = client.get("/api/v1/telemetry/aggregate", params=params)
                    times.append((time.perf_counter() - t0) * 1000)
                    if r.status_code != 200:
                        raise RuntimeError(f"aggregate answered {r.status_code}: {r.text[:300]}")
                    buckets = r.json()["buckets"]
                    if len(buckets) != 1440 or any(b["count"] != 60 for b in buckets):
                        raise RuntimeError("unexpected buckets in the answer")
                http_runs.append(times)
            profile = None
            if args.profile:
                raw = harness.RESULTS / "aggregate_profile.txt"
                harness.RESULTS.mkdir(parents=True, exist_ok=True)
                spy = harness.start_profile(server.pid, raw, 10)
                deadline = time.perf_counter() + 10
                while time.perf_counter() < deadline:
                    client.get("/api/v1/telemetry/aggregate", params=params)
                if spy is not None:
                    spy.wait(timeout=60)
                profile = harness.summarize_profile(raw)

    harness.RESULTS.mkdir(parents=True, exist_ok=True)
    (harness.RESULTS / "aggregate_plan.txt").write_text("\n".join(plan) + "\n")
    summary = {
        "http_median_ms": round(harness.median([harness.median(r) for r in http_runs]), 2),
        "sql_median_ms": round(harness.median([harness.median(r) for r in sql_runs]), 2),
        "points_aggregated": 86_400,
        "buckets": 1440,
    }
    summary["target_50ms_met"] = summary["http_median_ms"] <= 50
    harness.save(
        "aggregate" + ("_no_access_log" if args.no_access_log else ""),
        {
            "setup": {
                "points_stored": stored,
                "requests_per_run": per_run,
                "runs": args.runs,
                "client": "httpx, sequential",
                "server": "uvicorn --no-access-log" if args.no_access_log else "iiot serve",
            },
            "summary": summary,
            "http_runs_ms": [[round(t, 2) for t in r] for r in http_runs],
            "sql_runs_ms": [[round(t, 2) for t in r] for r in sql_runs],
            "profile_top": profile,
        },
    )
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
