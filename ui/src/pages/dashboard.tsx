import { lazy } from "preact-iso";
import { useMemo } from "preact/hooks";
import { get, qs } from "../api";
import { Bar, ErrorBox, useLoad } from "../components/ui";
import { lastDays, num, when } from "../format";
import { useSession } from "../session";
import type { Quotas, Stats } from "../types";

const Chart = lazy(() => import("../components/chart"));

interface Latest {
  values: { device_id: string; key: string }[];
  truncated: boolean;
}
interface Aggregate {
  buckets: { ts: string; value: number | null; count: number }[];
}

// At most this many series are counted for the points-per-day chart (one request each).
const MAX_SERIES = 40;

async function pointsPerDay(): Promise<{ days: string[]; counts: number[]; partial: boolean }> {
  const days = lastDays(30);
  const start = `${days[0]}T00:00:00Z`;
  const latest = await get<Latest>(`/telemetry/latest${qs({ limit: 1000 })}`);
  const series = latest.values.slice(0, MAX_SERIES);
  const counts = new Map(days.map((d) => [d, 0]));
  const queue = [...series];
  const worker = async () => {
    for (let s = queue.shift(); s; s = queue.shift()) {
      const agg = await get<Aggregate>(
        `/telemetry/aggregate${qs({ device_id: s.device_id, key: s.key, interval: "1d", fn: "count", start })}`,
      );
      for (const b of agg.buckets) {
        const day = b.ts.slice(0, 10);
        if (counts.has(day)) counts.set(day, counts.get(day)! + b.count);
      }
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return {
    days,
    counts: days.map((d) => counts.get(d)!),
    partial: latest.truncated || latest.values.length > MAX_SERIES,
  };
}

export function Dashboard() {
  const { user } = useSession();
  const id = user.tenant!.id;
  const quotas = useLoad(() => get<Quotas>(`/tenants/${id}/quotas`), [id]);
  const stats = useLoad(() => get<Stats>(`/tenants/${id}/stats`), [id]);
  const perDay = useLoad(pointsPerDay, [id]);
  const chartData = useMemo(() => {
    if (!perDay.data) return null;
    return [perDay.data.days.map((d) => Date.parse(`${d}T00:00:00Z`) / 1000), perDay.data.counts];
  }, [perDay.data]);
  const q = quotas.data;
  const s = stats.data;
  return (
    <section>
      <h1>Dashboard</h1>
      <ErrorBox error={quotas.error || stats.error} />
      {q ? (
        <div class="card">
          <h2>Quotas</h2>
          <Bar label="Devices" used={num(q.devices.used)} limit={num(q.devices.limit)} pct={q.devices.percentage} />
          <Bar
            label={`Users (incl. ${s?.invited_count ?? 0} pending invitations)`}
            used={num(q.users.used)}
            limit={num(q.users.limit)}
            pct={q.users.percentage}
          />
          <Bar
            label={`Telemetry points today (resets ${when(q.telemetry_points.resets_at)})`}
            used={num(q.telemetry_points.used_today)}
            limit={num(q.telemetry_points.limit_per_day)}
            pct={q.telemetry_points.percentage}
          />
          <Bar
            label="Retention: oldest data (days)"
            used={num(q.data_retention.oldest_data_age_days ?? 0)}
            limit={num(q.data_retention.current_days)}
            pct={
              q.data_retention.current_days && q.data_retention.oldest_data_age_days !== null
                ? (100 * q.data_retention.oldest_data_age_days) / q.data_retention.current_days
                : null
            }
          />
        </div>
      ) : (
        <p class="loading">Loading quotas…</p>
      )}
      {s ? (
        <ul class="tiles" aria-label="Figures">
          <li>
            <strong>{s.device_count}</strong> devices
          </li>
          <li>
            <strong>{s.user_count}</strong> members
          </li>
          <li>
            <strong>{s.rule_count}</strong> rules
          </li>
          <li>
            <a href="/alerts?state=open">
              <strong>{s.active_alerts}</strong> open alerts
            </a>
          </li>
          <li>
            <strong>{s.alerts_24h}</strong> alerts in 24 h
          </li>
        </ul>
      ) : null}
      <div class="card">
        <h2>Points per day, last 30 days</h2>
        <ErrorBox error={perDay.error} />
        {chartData ? (
          <>
            <Chart title="Telemetry points per day over the last 30 days" data={chartData} series={[{ label: "points", bars: true }]} height={220} />
            {perDay.data!.partial ? <small>Counted over the first {MAX_SERIES} series.</small> : null}
          </>
        ) : perDay.loading ? (
          <p class="loading">Counting…</p>
        ) : null}
      </div>
    </section>
  );
}
