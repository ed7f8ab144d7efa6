import { useLocation, useRoute } from "preact-iso";
import { useEffect, useState } from "preact/hooks";
import { ApiError, get, qs, request } from "../api";
import { ErrorBox, Field, Pager, useAction, useLoad } from "../components/ui";
import { shown, when } from "../format";
import { useCan } from "../session";
import { openStream } from "../stream";
import { throttle } from "../throttle";
import type { Alert, AlertDetail } from "../types";
import { NotFound } from "./notfound";

interface AlertList {
  alerts: Alert[];
  total: number;
}
const PAGE = 50;
const OPEN_STATES = ["new", "acknowledged", "investigating"];

async function loadAlerts(state: string, severity: string, offset: number): Promise<AlertList> {
  if (state === "open") {
    // Open = every state but resolved: three lists merged, newest first.
    const lists = await Promise.all(
      OPEN_STATES.map((s) => get<AlertList>(`/alerts${qs({ state: s, severity, limit: PAGE })}`)),
    );
    const alerts = lists.flatMap((l) => l.alerts).sort((a, b) => b.created_at.localeCompare(a.created_at));
    return { alerts, total: lists.reduce((n, l) => n + l.total, 0) };
  }
  return get<AlertList>(`/alerts${qs({ state, severity, limit: PAGE, offset })}`);
}

export function Alerts() {
  const { query, route } = useLocation();
  const state = query.state ?? "open";
  const severity = query.severity ?? "";
  const offset = Number(query.offset ?? 0) || 0;
  const list = useLoad(() => loadAlerts(state, severity, offset), [state, severity, offset]);
  const [live, setLive] = useState(false);
  // Alert events of a busy tenant come in bursts: the list is re-read at most every 300 ms, at
  // once for an event after a quiet spell (its alert is committed when the event arrives).
  useEffect(() => {
    const soon = throttle(list.reload, 300);
    const close = openStream({ onStatus: setLive, onAlert: soon, onReset: soon });
    return () => {
      close();
      soon.cancel();
    };
  }, [list.reload]);
  const set = (changes: Record<string, string | number>) =>
    route(`/alerts${qs({ state, severity, offset: 0, ...changes })}`, true);
  return (
    <section>
      <div class="title-row">
        <h1>Alerts</h1>
        <span class={`live ${live ? "on" : "off"}`} role="status">
          {live ? "Live" : "Not live"}
        </span>
      </div>
      <form class="filters" role="search" aria-label="Filter alerts" onSubmit={(e) => e.preventDefault()}>
        <Field label="State">
          <select value={state} onChange={(e) => set({ state: e.currentTarget.value })}>
            <option value="open">Open</option>
            <option value="new">New</option>
            <option value="acknowledged">Acknowledged</option>
            <option value="investigating">Investigating</option>
            <option value="resolved">Resolved</option>
            <option value="">Any</option>
          </select>
        </Field>
        <Field label="Severity">
          <select value={severity} onChange={(e) => set({ severity: e.currentTarget.value })}>
            <option value="">Any</option>
            {["critical", "high", "medium", "low", "info"].map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </Field>
      </form>
      <ErrorBox error={list.error} />
      {list.data ? (
        <>
          <table>
            <caption class="sr-only">Alerts</caption>
            <thead>
              <tr>
                <th scope="col">Raised</th>
                <th scope="col">Severity</th>
                <th scope="col">State</th>
                <th scope="col">Message</th>
                <th scope="col">Device</th>
                <th scope="col">Occurrences</th>
                <th scope="col">SLA</th>
              </tr>
            </thead>
            <tbody data-testid="alert-rows">
              {list.data.alerts.map((a) => (
                <tr key={a.id}>
                  <td>
                    <a href={`/alerts/${a.id}`}>{when(a.created_at)}</a>
                  </td>
                  <td>
                    <span class={`badge sev-${a.severity}`}>{a.severity}</span>
                  </td>
                  <td>{a.state}</td>
                  <td>{a.message}</td>
                  <td>{a.device_id ? <a href={`/devices/${a.device_id}`}>{a.device_name ?? "device"}</a> : "—"}</td>
                  <td>{a.occurrence_count}</td>
                  <td>{a.tta_breached || a.ttr_breached ? <span class="badge breached">breached</span> : "ok"}</td>
                </tr>
              ))}
              {list.data.alerts.length === 0 ? (
                <tr>
                  <td colSpan={7}>No alerts.</td>
                </tr>
              ) : null}
            </tbody>
          </table>
          {state !== "open" ? <Pager total={list.data.total} limit={PAGE} offset={offset} onOffset={(o) => set({ offset: o })} /> : null}
        </>
      ) : null}
    </section>
  );
}

const ACTIONS: [string, string, string[]][] = [
  ["acknowledge", "Acknowledge", ["new"]],
  ["investigate", "Investigate", ["acknowledged"]],
  ["resolve", "Resolve", ["new", "acknowledged", "investigating"]],
];

export function AlertPage() {
  const { params } = useRoute();
  const alert = useLoad(() => get<AlertDetail>(`/alerts/${params.id}`), [params.id]);
  const canAct = useCan("operator");
  const [notes, setNotes] = useState("");
  const { busy, error, run } = useAction();
  useEffect(
    () => openStream({ onAlert: (e) => e.id === params.id && alert.reload(), onReset: () => alert.reload() }),
    [params.id],
  );
  if (alert.error instanceof ApiError && (alert.error.status === 404 || alert.error.status === 422)) {
    return <NotFound what="alert" />;
  }
  if (alert.error) return <ErrorBox error={alert.error} />;
  const a = alert.data;
  if (!a) return <p class="loading">Loading…</p>;
  const possible = ACTIONS.filter(([, , from]) => from.includes(a.state));
  return (
    <section>
      <h1>
        Alert: {a.rule_name} <span class={`badge sev-${a.severity}`}>{a.severity}</span>
      </h1>
      <p>{a.message}</p>
      <dl class="facts">
        <dt>State</dt>
        <dd data-testid="alert-state">{a.state}</dd>
        <dt>Device</dt>
        <dd>{a.device_id ? <a href={`/devices/${a.device_id}`}>{a.device_name ?? a.device_id}</a> : "—"}</dd>
        <dt>Value / threshold</dt>
        <dd>
          {a.key ?? "—"}: {shown(a.value)} / {shown(a.threshold)}
        </dd>
        <dt>Occurrences</dt>
        <dd>
          {a.occurrence_count} (last {when(a.last_occurred_at)})
        </dd>
        <dt>Time to acknowledge</dt>
        <dd>
          {a.tta_minutes} min, due {when(a.tta_due_at)} {a.tta_breached ? <span class="badge breached">breached</span> : <span class="badge ok">within SLA</span>}
        </dd>
        <dt>Time to resolve</dt>
        <dd>
          {a.ttr_minutes} min, due {when(a.ttr_due_at)} {a.ttr_breached ? <span class="badge breached">breached</span> : <span class="badge ok">within SLA</span>}
        </dd>
      </dl>
      {canAct && possible.length ? (
        <form class="card narrow" onSubmit={(e) => e.preventDefault()}>
          <Field label="Notes">
            <textarea maxLength={2000} value={notes} onInput={(e) => setNotes(e.currentTarget.value)} />
          </Field>
          <ErrorBox error={error} />
          <div class="actions">
            {possible.map(([action, label]) => (
              <button
                key={action}
                type="button"
                disabled={busy}
                onClick={async () => {
                  const ok = await run(async () => {
                    const updated = await request<AlertDetail>("POST", `/alerts/${a.id}/${action}`, { notes: notes || null });
                    alert.setData(updated);
                  });
                  if (ok) setNotes("");
                }}
              >
                {label}
              </button>
            ))}
          </div>
        </form>
      ) : null}
      <h2>History</h2>
      <ol class="history">
        {a.history.map((h, i) => (
          <li key={i}>
            <time>{when(h.created_at)}</time> {h.from_state ?? "—"} → <strong>{h.to_state}</strong> by {h.actor_type}
            {h.notes ? <q>{h.notes}</q> : null}
          </li>
        ))}
      </ol>
    </section>
  );
}
