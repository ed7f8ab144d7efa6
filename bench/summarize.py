"""Print the headline figures of bench/results/*.json as a Markdown table.

.venv/bin/python bench/summarize.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _yes(flag: bool) -> str:
    return "met" if flag else "**missed**"


def main() -> None:
    print("| Benchmark | Figure (median) | Reference / detail | Target | Result | Load avg |")
    print("|---|---|---|---|---|---|")
    for name in ("ingest_batch", "ingest_batch_2_workers"):
        if (d := _load(name)) is not None:
            s = d["summary"]
            print(
                f"| {name} | last million {s['http_last_million_points_per_s']:,.0f} points/s"
                f" (overall {s['http_points_per_s']:,.0f}/s, server CPU"
                f" {s['server_cpu_ms_per_1000_points']} ms per 1,000 points)"
                f" | COPY bare heap {s['copy_bare_heap_rows_per_s']:,.0f}/s (ratio"
                f" {s['ratio_last_million_to_bare_heap']}); heap + PK"
                f" {s['copy_heap_pk_rows_per_s']:,.0f}/s; heap + PK with no server"
                f" {s['copy_heap_pk_no_server_rows_per_s']:,.0f}/s"
                f" | ≥ 60,000/s (stretch 120,000) and ≥ 0.3 × bare heap"
                f" | {_yes(s['target_60k_met'])} / {_yes(s['target_0_3_bare_heap_met'])}"
                f" | {d['machine']['load_average_1_5_15min']} |"
            )
    for name in ("ingest_single", "ingest_single_no_access_log"):
        if (d := _load(name)) is not None:
            s = d["summary"]
            ref = s["minimal_fastapi"]
            for key, label in (("iiot_1_workers", "1 process"), ("iiot_2_workers", "2 processes")):
                if key not in s:
                    continue
                r = s[key]
                met = (
                    f"{_yes(s['target_2000_rps_one_process_met'])} /"
                    f" {_yes(s['target_p99_50ms_one_process_met'])} /"
                    f" {_yes(s['target_0_7_minimal_met'])}"
                    if key == "iiot_1_workers"
                    else "(reported)"
                )
                print(
                    f"| {name}, {label} | {r['requests_per_s']:,.0f} req/s,"
                    f" p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms"
                    f" | minimal FastAPI {ref['requests_per_s']:,.0f} req/s, p99"
                    f" {ref['p99_ms']:.1f} ms (ratio {r['ratio_to_minimal_fastapi']})"
                    f" | ≥ 2,000 req/s, p99 ≤ 50 ms, ≥ 0.7 × minimal | {met}"
                    f" | {d['machine']['load_average_1_5_15min']} |"
                )
    for name in ("stats_quotas", "stats_quotas_no_access_log"):
        if (d := _load(name)) is not None:
            for endpoint in ("stats", "quotas"):
                s = d["summary"][endpoint]
                print(
                    f"| {name} {endpoint} | p50 {s['p50_ms_large']:.1f} ms,"
                    f" p99 {s['p99_ms_large']:.1f} ms at {d['summary']['points_large']:,} points"
                    f" | p50 {s['p50_ms_small']:.1f} ms, p99 {s['p99_ms_small']:.1f} ms at"
                    f" {d['summary']['points_small']:,} points; p50 ratio {s['p50_ratio']}"
                    f" | p99 ≤ 20 ms, ratio ≤ 1.5"
                    f" | {_yes(s['target_p99_20ms_met'])} / {_yes(s['target_ratio_1_5_met'])}"
                    f" | {d['machine']['load_average_1_5_15min']} |"
                )
    for name in ("aggregate", "aggregate_no_access_log"):
        if (d := _load(name)) is not None:
            s = d["summary"]
            print(
                f"| {name} | {s['http_median_ms']:.1f} ms over HTTP"
                f" | SQL alone {s['sql_median_ms']:.1f} ms | ≤ 50 ms"
                f" | {_yes(s['target_50ms_met'])} | {d['machine']['load_average_1_5_15min']} |"
            )


if __name__ == "__main__":
    main()
