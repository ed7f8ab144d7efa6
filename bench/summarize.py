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
    for name in ("ingest_batch", "ingest_batch_no_access_log"):
        if (d := _load(name)) is not None:
            s = d["summary"]
            print(
                f"| {name} | {s['http_points_per_s']:,.0f} points/s"
                f" | COPY {s['copy_points_per_s']:,.0f}/s (ratio {s['ratio_to_copy']});"
                f" COPY per batch {s['copy_per_batch_points_per_s']:,.0f}/s"
                f" (ratio {s['ratio_to_copy_per_batch']})"
                f" | ≥ 50,000/s and ≥ 0.5 × COPY"
                f" | {_yes(s['target_50k_met'])} / {_yes(s['target_half_copy_met'])}"
                f" | {d['machine']['load_average_1_5_15min']} |"
            )
    for name in ("ingest_single", "ingest_single_no_access_log"):
        if (d := _load(name)) is not None:
            s = d["summary"]
            print(
                f"| {name} | {s['requests_per_s']:,.0f} req/s"
                f" | p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms"
                f" | ≥ 2,000 req/s, p99 ≤ 50 ms"
                f" | {_yes(s['target_2000_rps_met'])} / {_yes(s['target_p99_50ms_met'])}"
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
