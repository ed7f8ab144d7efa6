"""Parsing one ingest batch, the hand-written parser against the model-based one, in one run.

    .venv/bin/python bench/ingest_parse.py [--runs N] [--repeat N] [--old-ref REF]

The body is `ingest_batch.py`'s: 1,000 points as 100 timestamps x 10 keys (epoch milliseconds,
float values). Each sample decodes it with orjson and parses it (what `POST /telemetry` does
between reading the body and admitting it), `--repeat` times; the hand-written parser is the
`src/iiot/telemetry/schemas.py` of `--old-ref` (the last commit that had it), loaded from git
beside the current one. The two are timed alternately, so both see the same machine, and both
results are checked to hold the same rows. The device API's points (`PointIn`, as MQTT and the
HTTP device API hand them over) are timed the same way: before, rendered into a document and
parsed; now, validated directly (`parse_points`). Figures: median microseconds per batch over
`--runs` samples; results in bench/results/ingest_parse.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson

from iiot.telemetry import schemas

ROOT = Path(__file__).resolve().parent.parent
OLD_REF = "bc55dab6a5bc35471cd4f22f5b7d7e0cd1236d6f"
KEYS = [f"k{i}" for i in range(10)]
ITEMS = 100
STEP_MS = 10


def load_old(ref: str) -> ModuleType:
    source = subprocess.run(
        ["git", "show", f"{ref}:src/iiot/telemetry/schemas.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    path = Path("/tmp") / f"iiot_ingest_parse_old_{ref[:12]}.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("iiot_ingest_parse_old", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def batch_body(now: datetime) -> bytes:
    start = int((now - timedelta(hours=1)).timestamp() * 1000)
    points = [
        {
            "ts": start + i * STEP_MS,
            "values": {k: round(20 + (i * 7 + j) % 50 * 0.37, 2) for j, k in enumerate(KEYS)},
        }
        for i in range(ITEMS)
    ]
    return orjson.dumps({"points": points})


def sample(fn: Callable[[], Any], repeat: int) -> float:
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat * 1e6


def columns(parsed: Any) -> tuple[Any, ...]:
    assert not parsed.errors, parsed.errors
    return dataclasses.astuple(parsed.rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--old-ref", default=OLD_REF)
    args = parser.parse_args()

    old = load_old(args.old_ref)
    now = datetime.now(UTC)
    oldest = now - timedelta(days=90)
    device = uuid.uuid4()
    body = batch_body(now)
    decoded = orjson.loads(body)
    points = [
        schemas.PointIn(ts=datetime.fromtimestamp(p["ts"] / 1000, UTC), values=p["values"])
        for p in decoded["points"]
    ]

    def old_body() -> Any:
        return old.parse_ingest(orjson.loads(body), now=now, oldest=oldest, own_device=device)

    def new_body() -> Any:
        return schemas.parse_ingest(orjson.loads(body), now=now, oldest=oldest, own_device=device)

    def old_points() -> Any:
        # What `ingest.prepare_points` did: render the points into a body, then parse it.
        document = {
            "device_id": str(device),
            "points": [{"ts": p.ts, "values": p.values} for p in points],
        }
        return old.parse_ingest(document, now=now, oldest=oldest, own_device=device)

    def new_points() -> Any:
        return schemas.parse_points(device, points, now=now, oldest=oldest, own_device=device)

    assert columns(old_body()) == columns(new_body())
    assert columns(old_points()) == columns(new_points())
    assert len(new_body().rows) == ITEMS * len(KEYS)

    cases = {
        "body": (old_body, new_body),
        "device_points": (old_points, new_points),
    }
    times: dict[str, dict[str, list[float]]] = {c: {"old": [], "new": []} for c in cases}
    for fn in (f for pair in cases.values() for f in pair):
        sample(fn, args.repeat)  # warm up
    for _ in range(args.runs):
        for case, (old_fn, new_fn) in cases.items():
            times[case]["old"].append(sample(old_fn, args.repeat))
            times[case]["new"].append(sample(new_fn, args.repeat))

    result: dict[str, Any] = {
        "batch": f"{ITEMS} timestamps x {len(KEYS)} keys = {ITEMS * len(KEYS)} points",
        "old_ref": args.old_ref,
        "runs": args.runs,
        "repeat": args.repeat,
    }
    for case, by in times.items():
        old_us = statistics.median(by["old"])
        new_us = statistics.median(by["new"])
        result[case] = {
            "old_us_median": round(old_us, 1),
            "new_us_median": round(new_us, 1),
            "new_over_old": round(new_us / old_us, 3),
            "old_us_runs": [round(t, 1) for t in by["old"]],
            "new_us_runs": [round(t, 1) for t in by["new"]],
        }
        print(
            f"{case:14s} old {old_us:8.1f} us   new {new_us:8.1f} us   "
            f"new/old {new_us / old_us:.3f}"
        )
    out = ROOT / "bench" / "results" / "ingest_parse.json"
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
