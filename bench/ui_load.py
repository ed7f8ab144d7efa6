"""Web UI: first dashboard load (cold cache) and a 30-day chart of 1 Hz data, in chromium.

    .venv/bin/python bench/ui_load.py [--runs 3] [--days 30]

`iiot serve` on a scratch database; one tenant whose device holds `--days` days of 1 Hz data
of one key (COPY as the owner into the daily partitions). Debian's chromium (Playwright,
headless) with a fresh browser context per run, i.e. an empty cache:

- dashboard: signed in by the refresh cookie (as after an earlier sign-in), open `/`; the
  bytes transferred for every response (encoded body + headers, as sent over the wire) and
  the times from navigation start until the signed-in shell is rendered (navigation works),
  until the quota bars are shown, and until the points-per-day chart is drawn; the resource
  timings of every request are saved.
- chart: open the device page, choose the 30-day range: the time from the choice until the
  chart shows the aggregate buckets (fetch + render), and uPlot's own render time.

Targets: ≤ 500 KB compressed and ≤ 1 s for the dashboard; ≤ 300 ms for the 30-day chart.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

from iiot.identity.passwords import hash_password  # noqa: E402

PASSWORD = "bench-password-1234"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# Recorded in the page itself (no polling delay): when the signed-in shell (navigation, tenant
# switcher) is rendered, when the quota bars first appear (the dashboard shows its figures) and
# when the points-per-day chart is drawn.
MARKS = """
window.__marks = {};
new MutationObserver(() => {
  const m = window.__marks;
  if (m.shell === undefined && document.querySelector("nav.side a")) m.shell = performance.now();
  if (m.usable === undefined && document.querySelector("progress")) m.usable = performance.now();
  const drawn = document.querySelector(".chart .u-over");
  if (m.chart === undefined && drawn) m.chart = performance.now();
}).observe(document, { childList: true, subtree: true });
"""
RESOURCE_TIMINGS = """
performance.getEntriesByType("resource").map(
  (e) => [e.name.replace(location.origin, ""), Math.round(e.startTime), Math.round(e.duration)]
)
"""


def load_days(db: harness.Scratch, tenant: harness.SeededTenant, days: int) -> int:
    """`days` full UTC days of 1 Hz `temperature` before now, day by day through COPY."""
    device = tenant.device_ids[0]
    end = datetime.now(UTC).replace(microsecond=0)
    start = end - timedelta(days=days)
    stored = 0
    with db.owner() as conn, conn.cursor() as cur:
        day = start.date()
        while day <= end.date():
            cur.execute("select iiot_ensure_telemetry_partition(%s)", (day,))
            day += timedelta(days=1)
        series = cur.execute(
            "insert into telemetry_series (tenant_id, device_id, key) values (%s, %s, %s)"
            " on conflict (tenant_id, device_id, key) do update set key = excluded.key"
            " returning id",
            (tenant.id, device, "temperature"),
        ).fetchone()
        assert series is not None
        conn.commit()
        prefix = f"{tenant.id}\t{series[0]}\t"
        at = start
        while at < end:
            chunk_end = min(at + timedelta(days=1), end)
            seconds = int((chunk_end - at).total_seconds())
            base = at.timestamp()
            with cur.copy(
                "copy telemetry (tenant_id, series_id, ts, value_num) from stdin"
            ) as copy:
                copy.write(
                    "".join(
                        f"{prefix}{datetime.fromtimestamp(base + s, UTC).isoformat()}\t"
                        f"{20 + (s % 3600) / 360}\n"
                        for s in range(seconds)
                    ).encode()
                )
            stored += seconds
            at = chunk_end
            conn.commit()
    with db.owner() as conn:
        conn.autocommit = True
        conn.execute("vacuum analyze telemetry")
    return stored


async def measure(url: str, email: str, device_id: str, runs: int) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    loads: list[dict[str, Any]] = []
    charts: list[dict[str, Any]] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        for _ in range(runs):
            async with httpx.AsyncClient(base_url=url) as client:
                r = await client.post(
                    "/api/v1/auth/login?cookie=true", json={"email": email, "password": PASSWORD}
                )
                r.raise_for_status()
                refresh = r.cookies["iiot_refresh"]
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            await context.add_cookies(
                [
                    {
                        "name": "iiot_refresh",
                        "value": refresh,
                        "domain": "127.0.0.1",
                        "path": "/api/v1/auth",
                        "httpOnly": True,
                        "sameSite": "Strict",
                    }
                ]
            )
            await context.add_init_script(MARKS)
            page = await context.new_page()
            responses: list[Any] = []

            def finished(req: Any, into: list[Any] = responses) -> None:
                into.append(req)

            page.on("requestfinished", finished)
            await page.goto(url + "/")
            await page.wait_for_selector("progress", timeout=30_000)
            await page.wait_for_selector(".chart .u-over", timeout=30_000)
            await page.wait_for_load_state("networkidle")
            timings = await page.evaluate(RESOURCE_TIMINGS)
            marks = await page.evaluate("window.__marks")
            shell_ms, usable_ms, chart_ms = marks["shell"], marks["usable"], marks["chart"]
            total = 0
            by_type: dict[str, int] = {}
            for req in responses:
                sizes = await req.sizes()
                n = sizes["responseBodySize"] + sizes["responseHeadersSize"]
                total += n
                by_type[req.resource_type] = by_type.get(req.resource_type, 0) + n
            loads.append(
                {
                    "transferred_bytes": total,
                    "by_resource_type": by_type,
                    "requests": len(responses),
                    "signed_in_shell_ms": round(shell_ms, 1),
                    "quota_bars_shown_ms": round(usable_ms, 1),
                    "points_per_day_chart_ms": round(chart_ms, 1),
                    "resources_start_duration_ms": timings,
                }
            )
            # The 30-day chart of the device, from aggregates.
            await page.goto(f"{url}/devices/{device_id}")
            try:
                await page.wait_for_selector("[data-testid=device-chart] .u-over", timeout=30_000)
            except Exception:
                await page.screenshot(path=str(harness.RESULTS / "ui_load_failure.png"))
                raise
            started = await page.evaluate("performance.now()")
            await page.get_by_label("Range").select_option(label="Last 30 days")
            await page.wait_for_function(
                "document.querySelector('[data-testid=device-chart] .chart')?.dataset.points > 600",
                timeout=30_000,
            )
            done = await page.evaluate("performance.now()")
            render_ms = await page.get_by_test_id("device-chart").get_attribute("data-render-ms")
            points = await page.locator("[data-testid=device-chart] .chart").get_attribute(
                "data-points"
            )
            charts.append(
                {
                    "choice_to_chart_ms": round(done - started, 1),
                    "uplot_render_ms": round(float(render_ms or "nan"), 1),
                    "buckets": int(points or 0),
                }
            )
            await context.close()
        await browser.close()
    return {"dashboard": loads, "chart_30_days": charts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    if not (harness.ROOT / "src" / "iiot" / "web" / "ui" / "index.html").is_file():
        raise SystemExit("build the web UI first: make ui")
    with harness.scratch_database("ui") as db:
        (tenant,) = harness.seed_tenants(db, tenants=1, devices_per_tenant=1)
        with db.owner() as conn:
            row = conn.execute(
                "update users set password_hash = %s where id = %s returning email",
                (hash_password(PASSWORD), tenant.user_id),
            ).fetchone()
            conn.commit()
        assert row is not None
        stored = load_days(db, tenant, args.days)
        harness.log(f"{stored:,} points stored over {args.days} days")
        harness.settle(db)
        with harness.running_server(db, access_log=False) as server:
            # One reading through the API: the device's latest values name the key.
            r = httpx.post(
                server.url + "/api/v1/telemetry",
                headers={"X-API-Key": tenant.device_tokens[0]},
                json={"telemetry": {"temperature": 21.0}},
            )
            r.raise_for_status()
            result = asyncio.run(measure(server.url, row[0], str(tenant.device_ids[0]), args.runs))
    dash = result["dashboard"]
    chart = result["chart_30_days"]
    summary = {
        "dashboard_transferred_kb_median": round(
            harness.median([d["transferred_bytes"] for d in dash]) / 1024, 1
        ),
        "dashboard_shell_ms_median": harness.median([d["signed_in_shell_ms"] for d in dash]),
        "dashboard_usable_ms_median": harness.median([d["quota_bars_shown_ms"] for d in dash]),
        "dashboard_chart_ms_median": harness.median([d["points_per_day_chart_ms"] for d in dash]),
        "chart_30_days_ms_median": harness.median([c["choice_to_chart_ms"] for c in chart]),
        "chart_30_days_render_ms_median": harness.median([c["uplot_render_ms"] for c in chart]),
        "targets": {"transferred_kb": 500, "usable_ms": 1000, "chart_30_days_ms": 300},
    }
    harness.log(str(summary))
    harness.save("ui_load", {"points_stored": stored, "summary": summary, "runs": result})


if __name__ == "__main__":
    main()
