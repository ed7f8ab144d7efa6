"""Alert latency: from the ingest acknowledgement to the alert row being visible.

One tenant, one device, one threshold rule (`temperature > 50`, cooldown 0). Each trigger
sends a low reading, then a high one with the device token; the clock starts when the high
reading's 201 arrives and stops when a separate owner connection sees the alert's
`occurrence_count` reach that trigger's number (committed and visible to any reader).
Target: p99 <= 1 s over 1,000 triggers.

With `--ingest-rules N` it measures instead what N enabled rules cost the batch ingest of
bench/ingest_batch.py (same batches, same server): runs alternate between no rules and N
tenant-wide threshold rules on the batches' keys (thresholds above the sent values, so every
rule is evaluated on every reading and none fires), and after each run with rules one sentinel
trigger measures how far the engine lags behind the acknowledged ingest.
Target: at most 20% slower than with none.

    .venv/bin/python bench/alert_latency.py [--triggers 1000]
    .venv/bin/python bench/alert_latency.py --ingest-rules 100 [--runs 3] [--points 200000]
        [--profile]

`--profile` samples the server with py-spy during the first run with rules (its ingest and
the engine's catching up) into bench/results/ingest_with_rules_profile.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

TARGET_P99_SECONDS = 1.0


async def run(triggers: int) -> dict[str, object]:
    with harness.scratch_database("alerts") as db:
        [tenant] = harness.seed_tenants(db, tenants=1, devices_per_tenant=1)
        assert tenant.user_id is not None
        token = harness.access_token(tenant.user_id, tenant.id)
        device_id, device_token = str(tenant.device_ids[0]), tenant.device_tokens[0]
        with harness.running_server(db, access_log=False) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                r = await client.post(
                    "/api/v1/rules",
                    headers={"Authorization": f"Bearer {token}"},
                    json={
                        "name": "Too hot",
                        "rule_type": "threshold",
                        "condition": {"key": "temperature", "operator": ">", "value": 50},
                        "severity": "high",
                        "actions": [{"type": "alert"}],
                    },
                )
                r.raise_for_status()
                device = {"X-API-Key": device_token}
                base = datetime.now(UTC) - timedelta(minutes=5)
                latencies: list[float] = []
                with psycopg.connect(db.admin_url, autocommit=True) as watcher:
                    for n in range(1, triggers + 1):
                        for offset, value in ((0, 20.0), (1, 80.0)):
                            at = base + timedelta(milliseconds=2 * n + offset)
                            r = await client.post(
                                "/api/v1/telemetry",
                                headers=device,
                                json={
                                    "device_id": device_id,
                                    "timestamp": at.isoformat(),
                                    "telemetry": {"temperature": value},
                                },
                            )
                            r.raise_for_status()
                        acked = time.perf_counter()
                        deadline = acked + 10
                        while True:
                            row = watcher.execute(
                                "select occurrence_count from alerts where tenant_id = %s",
                                (tenant.id,),
                            ).fetchone()
                            if row is not None and row[0] >= n:
                                latencies.append(time.perf_counter() - acked)
                                break
                            if time.perf_counter() > deadline:
                                raise RuntimeError(f"trigger {n}: no alert within 10 s")
                            await asyncio.sleep(0.0005)
                        if n % 200 == 0:
                            harness.log(f"{n} triggers")
    ms = [x * 1000 for x in latencies]
    return {
        "triggers": triggers,
        "p50_ms": round(harness.percentile(ms, 0.50), 2),
        "p90_ms": round(harness.percentile(ms, 0.90), 2),
        "p99_ms": round(harness.percentile(ms, 0.99), 2),
        "max_ms": round(max(ms), 2),
        "mean_ms": round(sum(ms) / len(ms), 2),
        "target_p99_ms": TARGET_P99_SECONDS * 1000,
        "meets_target": harness.percentile(ms, 0.99) <= TARGET_P99_SECONDS * 1000,
    }


async def _wait_for_alert(db: harness.Scratch, rule_name: str, count: int) -> float:
    """Seconds until the alert of `rule_name` has `count` occurrences (10 s at most)."""
    start = time.perf_counter()
    with psycopg.connect(db.admin_url, autocommit=True) as watcher:
        while time.perf_counter() - start < 60:
            row = watcher.execute(
                "select occurrence_count from alerts where rule_name = %s", (rule_name,)
            ).fetchone()
            if row is not None and row[0] >= count:
                return time.perf_counter() - start
            await asyncio.sleep(0.001)
    raise RuntimeError("the sentinel alert did not appear within 60 s")


async def _engine_counts(client: httpx.AsyncClient) -> tuple[float, float]:
    """(batches evaluated, evaluation rounds) so far, from the server's /metrics."""
    text = (await client.get("/metrics")).text
    found = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("iiot_rules_batches_total", "iiot_rules_evaluation_seconds_count"):
            found[name] = float(value)
    return found["iiot_rules_batches_total"], found["iiot_rules_evaluation_seconds_count"]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _timed_send(
    ib: Any, url: str, pid: int, batches: list[Any], concurrency: int
) -> dict[str, float]:
    """ib.send_all, plus the server's CPU time per 1,000 points (robust to other load)."""
    before = _cpu_seconds(pid)
    result = dict(await ib.send_all(url, batches, concurrency))
    result["server_cpu_ms_per_1000_points"] = round(
        (_cpu_seconds(pid) - before) * 1000 / (result["points"] / 1000), 2
    )
    return result


async def ingest_overhead(
    rules: int, runs: int, points: int, concurrency: int, profile_raw: Path | None = None
) -> dict[str, object]:
    import ingest_batch as ib

    with harness.scratch_database("rules_ingest") as db:
        (tenant,) = harness.seed_tenants(db, tenants=1, devices_per_tenant=1_000)
        assert tenant.user_id is not None
        admin = {"Authorization": f"Bearer {harness.access_token(tenant.user_id, tenant.id)}"}
        timeline = ib.Timeline()
        with harness.running_server(db, access_log=False) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:

                async def add_rule(name: str, key: str, value: float) -> str:
                    r = await client.post(
                        "/api/v1/rules",
                        headers=admin,
                        json={
                            "name": name,
                            "rule_type": "threshold",
                            "condition": {"key": key, "operator": ">", "value": value},
                            "actions": [{"type": "alert"}],
                        },
                    )
                    r.raise_for_status()
                    return str(r.json()["id"])

                sentinel = await add_rule("sentinel", "sentinel", 0.5)
                harness.log("warm-up")
                await ib.send_all(
                    server.url, ib.make_batches(tenant, 20_000, 1_000, timeline), concurrency
                )
                without, with_rules, lag_ms = [], [], []
                for n in range(runs):
                    batches = ib.make_batches(tenant, points, 1_000, timeline)
                    without.append(
                        await _timed_send(ib, server.url, server.pid, batches, concurrency)
                    )
                    ids = [
                        await add_rule(f"bench rule {i}", ib.KEYS[i % len(ib.KEYS)], 1_000 + i)
                        for i in range(rules)
                    ]
                    batches = ib.make_batches(tenant, points, 1_000, timeline)
                    counted = await _engine_counts(client)
                    spy = None
                    if profile_raw is not None and n == 0:
                        # Long enough for the run and the engine's catching up after it.
                        seconds = without[-1]["seconds"] * 2 + 10
                        spy = harness.start_profile(server.pid, profile_raw, int(seconds))
                    with_rules.append(
                        await _timed_send(ib, server.url, server.pid, batches, concurrency)
                    )
                    cpu_at_ack = _cpu_seconds(server.pid)
                    at = datetime.fromtimestamp(timeline.next_ms(10) / 1000, UTC)
                    for value in (0.0, 1.0):
                        r = await client.post(
                            "/api/v1/telemetry",
                            headers={"X-API-Key": tenant.device_tokens[0]},
                            json={
                                "points": [
                                    {
                                        "ts": (at + timedelta(milliseconds=value)).isoformat(),
                                        "values": {"sentinel": value},
                                    }
                                ]
                            },
                        )
                        r.raise_for_status()
                    lag_ms.append(round(await _wait_for_alert(db, "sentinel", n + 1) * 1000, 1))
                    if spy is not None:
                        spy.wait(timeout=300)
                    batches_done, rounds = await _engine_counts(client)
                    with_rules[-1]["batches_per_evaluation"] = round(
                        (batches_done - counted[0]) / max(rounds - counted[1], 1), 2
                    )
                    # The engine's work after the last acknowledgement is charged to the run.
                    with_rules[-1]["server_cpu_ms_per_1000_points"] = round(
                        with_rules[-1]["server_cpu_ms_per_1000_points"]
                        + (_cpu_seconds(server.pid) - cpu_at_ack) * 1000 / (points / 1000),
                        2,
                    )
                    for rule_id in ids:
                        (
                            await client.delete(f"/api/v1/rules/{rule_id}", headers=admin)
                        ).raise_for_status()
                    harness.log(
                        f"run {n + 1}: {without[-1]['points_per_s']:,.0f} points/s without rules, "
                        f"{with_rules[-1]['points_per_s']:,.0f} with {rules}; engine lag after "
                        f"the run {lag_ms[-1]} ms, "
                        f"{with_rules[-1]['batches_per_evaluation']} batches per evaluation"
                    )
                assert sentinel
    base = harness.median([r["points_per_s"] for r in without])
    loaded = harness.median([r["points_per_s"] for r in with_rules])
    slowdown = round((base - loaded) / base * 100, 1)
    cpu_base = harness.median([r["server_cpu_ms_per_1000_points"] for r in without])
    cpu_loaded = harness.median([r["server_cpu_ms_per_1000_points"] for r in with_rules])
    return {
        "setup": {
            "devices": 1_000,
            "batch_points": 1_000,
            "points_per_run": points,
            "runs": runs,
            "rules": rules,
            "client": f"asyncio httpx, {concurrency} concurrent requests",
            "server": "uvicorn --no-access-log",
        },
        "points_per_s_without_rules": base,
        "points_per_s_with_rules": loaded,
        "slowdown_percent": slowdown,
        "server_cpu_ms_per_1000_points_without_rules": cpu_base,
        "server_cpu_ms_per_1000_points_with_rules": cpu_loaded,
        "server_cpu_increase_percent": round((cpu_loaded - cpu_base) / cpu_base * 100, 1),
        "target_slowdown_percent": 20,
        "meets_target": slowdown <= 20,
        "engine_lag_after_run_ms": lag_ms,
        "profile_top": harness.summarize_profile(profile_raw) if profile_raw else None,
        "runs_without": without,
        "runs_with": with_rules,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--triggers", type=int, default=1000)
    parser.add_argument("--ingest-rules", type=int, default=0, help="measure ingest with N rules")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--points", type=int, default=200_000, help="points per ingest run")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the first run with rules (ingest mode)"
    )
    args = parser.parse_args()
    if args.ingest_rules:
        profile_raw = harness.RESULTS / "ingest_with_rules_profile.txt" if args.profile else None
        overhead = asyncio.run(
            ingest_overhead(
                args.ingest_rules, args.runs, args.points, args.concurrency, profile_raw
            )
        )
        harness.log(
            f"batch ingest: {overhead['points_per_s_without_rules']:,.0f} points/s without "
            f"rules, {overhead['points_per_s_with_rules']:,.0f} with {args.ingest_rules}: "
            f"{overhead['slowdown_percent']}% slower (target <= 20%); server CPU per 1,000 "
            f"points {overhead['server_cpu_ms_per_1000_points_without_rules']} ms without, "
            f"{overhead['server_cpu_ms_per_1000_points_with_rules']} ms with "
            f"(+{overhead['server_cpu_increase_percent']}%)"
        )
        harness.save("ingest_with_rules", overhead)
        return
    result = asyncio.run(run(args.triggers))
    harness.log(
        f"alert latency over {result['triggers']} triggers: p50 {result['p50_ms']} ms, "
        f"p99 {result['p99_ms']} ms, max {result['max_ms']} ms "
        f"(target p99 <= {result['target_p99_ms']} ms)"
    )
    harness.save("alert_latency", result)


if __name__ == "__main__":
    main()
