import { lazy } from "preact-iso";
import { useMemo } from "preact/hooks";
import { get } from "../api";
import { Bar, ErrorBox, useLoad } from "../components/ui";
import { num, when } from "../format";
import { useSession } from "../session";
import type { Quotas, Stats } from "../types";

const Chart = lazy(() => import("../components/chart"));

interface DailyUsage {
  days: { day: string; telemetry_points: number }[];
}

/** Points accepted per UTC day over the last 30 days (the tenant's usage meter). */
async function pointsPerDay(tenantId: string): Promise<{ days: string[]; counts: number[] }> {
  const usage = await get<DailyUsage>(`/tenants/${tenantId}/usage/daily?days=30`);
  return { days: usage.days.map((d) => d.day), counts: usage.days.map((d) => d.telemetry_points) };
}

export function Dashboard() {
  const { user } = useSession();
  const id = user.tenant!.id;
  const quotas = useLoad(() => get<Quotas>(`/tenants/${id}/quotas`), [id]);
  const stats = useLoad(() => get<Stats>(`/tenants/${id}/stats`), [id]);
  const perDay = useLoad(() => pointsPerDay(id), [id]);
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
          </>
        ) : perDay.loading ? (
          <p class="loading">Counting…</p>
        ) : null}
      </div>
    </section>
  );
}
