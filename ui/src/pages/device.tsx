import { lazy, useLocation, useRoute } from "preact-iso";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { ApiError, get, qs, request } from "../api";
import { Dialog, ErrorBox, Field, useAction, useLoad } from "../components/ui";
import { chartSource, RANGES, shown, when } from "../format";
import { useCan } from "../session";
import { openStream } from "../stream";
import type { DeviceDetail, LatestValue } from "../types";
import { bodyOf, DeviceForm, fieldsOf, TokenPanel } from "./devices";
import { NotFound } from "./notfound";

const Chart = lazy(() => import("../components/chart"));

interface RawPage {
  points: { ts: string; value: number | boolean | string | null }[];
  next_cursor: string | null;
}
interface Aggregate {
  buckets: { ts: string; value: number | null }[];
}

// Raw points fetched for a short range at most (10 pages of the API's maximum).
const RAW_PAGES = 10;

export async function loadSeries(deviceId: string, key: string, seconds: number): Promise<[number[], (number | null)[]]> {
  const end = new Date();
  const start = new Date(end.getTime() - seconds * 1000);
  const source = chartSource(seconds);
  const times: number[] = [];
  const values: (number | null)[] = [];
  if (source.kind === "aggregate") {
    const agg = await get<Aggregate>(
      `/telemetry/aggregate${qs({ device_id: deviceId, key, interval: source.interval, fn: "avg", start: start.toISOString(), end: end.toISOString() })}`,
    );
    for (const b of agg.buckets) {
      times.push(Date.parse(b.ts) / 1000);
      values.push(b.value);
    }
    return [times, values];
  }
  const rows: { ts: string; value: unknown }[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < RAW_PAGES; page++) {
    const res: RawPage = await get<RawPage>(
      `/telemetry${qs({ device_id: deviceId, key, start: start.toISOString(), end: end.toISOString(), limit: 10000, cursor })}`,
    );
    rows.push(...res.points);
    cursor = res.next_cursor;
    if (!cursor) break;
  }
  rows.reverse(); // the API answers newest first
  for (const r of rows) {
    times.push(Date.parse(r.ts) / 1000);
    values.push(typeof r.value === "number" ? r.value : typeof r.value === "boolean" ? Number(r.value) : null);
  }
  return [times, values];
}

export function DevicePage() {
  const { params } = useRoute();
  const id = params.id;
  const device = useLoad(() => get<DeviceDetail>(`/devices/${id}`), [id]);
  const [latest, setLatest] = useState<Record<string, LatestValue>>({});
  const [live, setLive] = useState(false);
  const [key, setKey] = useState<string>("");
  const [range, setRange] = useState(RANGES[0].seconds);
  const [series, setSeries] = useState<[number[], (number | null)[]] | null>(null);
  const [seriesError, setSeriesError] = useState<unknown>(null);
  const [renderMs, setRenderMs] = useState<number | null>(null);
  const keyRef = useRef(key);
  keyRef.current = key;
  const rangeRef = useRef(range);
  rangeRef.current = range;

  useEffect(() => {
    if (device.data) {
      setLatest(device.data.latest_telemetry);
      const keys = Object.keys(device.data.latest_telemetry).sort();
      if (!keyRef.current && keys.length) setKey(keys[0]);
    }
  }, [device.data]);

  const reloadSeries = () => {
    if (!key) return;
    setSeriesError(null);
    loadSeries(id, key, range).then(setSeries, setSeriesError);
  };
  useEffect(reloadSeries, [id, key, range]);

  useEffect(() => {
    if (!device.data) return;
    return openStream({
      devices: [id],
      onStatus: setLive,
      onReset: () => {
        device.reload();
        reloadSeries();
      },
      onTelemetry: (e) => {
        if (e.device_id !== id) return;
        setLatest((prev) => {
          const next = { ...prev };
          for (const [k, ts, value] of e.points) {
            if (!next[k] || next[k].ts <= ts) next[k] = { ...(next[k] ?? {}), value, ts };
          }
          return next;
        });
        if (!keyRef.current && e.points.length) setKey(e.points[0][0]);
        const mine = e.points.filter(([k]) => k === keyRef.current);
        if (!mine.length || chartSource(rangeRef.current).kind !== "raw") return;
        setSeries((prev) => {
          const [t, v] = prev ?? [[], []];
          const times = [...t];
          const values = [...v];
          for (const [, ts, value] of mine) {
            const at = Date.parse(ts) / 1000;
            const num = typeof value === "number" ? value : typeof value === "boolean" ? Number(value) : null;
            let i = times.length;
            while (i > 0 && times[i - 1] > at) i--;
            times.splice(i, 0, at);
            values.splice(i, 0, num);
          }
          const cutoff = Date.now() / 1000 - rangeRef.current;
          let drop = 0;
          while (drop < times.length && times[drop] < cutoff) drop++;
          return [times.slice(drop), values.slice(drop)];
        });
      },
    });
  }, [id, !!device.data]);

  const data = useMemo(() => (series ? [series[0], series[1]] : null), [series]);

  if (device.error instanceof ApiError && (device.error.status === 404 || device.error.status === 422)) {
    return <NotFound what="device" />;
  }
  if (device.error) return <ErrorBox error={device.error} />;
  if (!device.data) return <p class="loading">Loading…</p>;
  const d = device.data;
  const keys = Object.keys(latest).sort();
  return (
    <section>
      <div class="title-row">
        <h1>{d.name}</h1>
        <span class={`badge ${d.status}`}>{d.status}</span>
        <span class={`live ${live ? "on" : "off"}`} role="status">
          {live ? "Live" : "Not live"}
        </span>
      </div>
      <dl class="facts">
        <dt>Type</dt>
        <dd>{d.type ?? "—"}</dd>
        <dt>Area</dt>
        <dd>{d.area ?? "—"}</dd>
        <dt>Location</dt>
        <dd>{d.location ?? "—"}</dd>
        <dt>Last seen</dt>
        <dd>{when(d.last_seen)}</dd>
      </dl>
      <DeviceActions device={d} onChanged={device.reload} />
      <h2>Latest values</h2>
      <table>
        <caption class="sr-only">Latest values</caption>
        <thead>
          <tr>
            <th scope="col">Key</th>
            <th scope="col">Value</th>
            <th scope="col">Unit</th>
            <th scope="col">Time</th>
          </tr>
        </thead>
        <tbody data-testid="latest-values">
          {keys.map((k) => (
            <tr key={k}>
              <th scope="row">{k}</th>
              <td>{shown(latest[k].value)}</td>
              <td>{latest[k].unit ?? ""}</td>
              <td>{when(latest[k].ts)}</td>
            </tr>
          ))}
          {keys.length === 0 ? (
            <tr>
              <td colSpan={4}>No telemetry yet.</td>
            </tr>
          ) : null}
        </tbody>
      </table>
      <h2>Chart</h2>
      <div class="filters">
        <Field label="Chart key">
          <select value={key} onChange={(e) => setKey(e.currentTarget.value)}>
            {keys.length === 0 ? <option value="">—</option> : null}
            {keys.map((k) => (
              <option key={k} value={k}>
                {k}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Range">
          <select value={range} onChange={(e) => setRange(Number(e.currentTarget.value))}>
            {RANGES.map((r) => (
              <option key={r.seconds} value={r.seconds}>
                Last {r.label}
              </option>
            ))}
          </select>
        </Field>
        <small>{chartSource(range).kind === "raw" ? "Raw points, live" : `Averages per ${(chartSource(range) as { interval: string }).interval}`}</small>
      </div>
      <ErrorBox error={seriesError} />
      {data && key ? (
        <div data-testid="device-chart" data-render-ms={renderMs ?? ""}>
          <Chart title={`${key} of ${d.name}`} data={data} series={[{ label: key }]} onRendered={setRenderMs} />
        </div>
      ) : null}
    </section>
  );
}

function DeviceActions({ device, onChanged }: { device: DeviceDetail; onChanged: () => void }) {
  const canWrite = useCan("developer");
  const { route } = useLocation();
  const [editing, setEditing] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const [token, setToken] = useState<string | null>(null);
  const [value, setValue] = useState(fieldsOf(device));
  const [confirmName, setConfirmName] = useState("");
  const { busy, error, run } = useAction();
  if (!canWrite) return null;
  return (
    <div class="actions">
      <button type="button" class="secondary" onClick={() => (setValue(fieldsOf(device)), setEditing(true))}>
        Edit device
      </button>
      <button
        type="button"
        class="secondary"
        onClick={() =>
          run(async () => {
            const c = await request<{ token: string }>("POST", `/devices/${device.id}/credentials`);
            setToken(c.token);
          })
        }
      >
        Rotate credentials
      </button>
      <button
        type="button"
        class="secondary"
        onClick={() =>
          run(async () => {
            await request("PATCH", `/devices/${device.id}`, { status: device.status === "disabled" ? "enabled" : "disabled" });
            onChanged();
          })
        }
      >
        {device.status === "disabled" ? "Enable device" : "Disable device"}
      </button>
      <button type="button" class="danger" onClick={() => (setConfirmName(""), setDeleting(true))}>
        Delete device
      </button>
      <ErrorBox error={error} />
      {token ? <TokenPanel deviceId={device.id} token={token} /> : null}
      <Dialog title="Edit device" open={editing} onClose={() => setEditing(false)}>
        <form
          onSubmit={async (e) => {
            e.preventDefault();
            if (await run(() => request("PATCH", `/devices/${device.id}`, bodyOf(value)))) {
              setEditing(false);
              onChanged();
            }
          }}
        >
          <DeviceForm value={value} onChange={setValue} />
          <ErrorBox error={error} />
          <div class="actions">
            <button type="submit" disabled={busy}>
              Save
            </button>
            <button type="button" class="secondary" onClick={() => setEditing(false)}>
              Cancel
            </button>
          </div>
        </form>
      </Dialog>
      <Dialog title="Delete device" open={deleting} onClose={() => setDeleting(false)}>
        <form
          onSubmit={async (e) => {
            e.preventDefault();
            if (await run(() => request("DELETE", `/devices/${device.id}`))) {
              setDeleting(false);
              route("/devices");
            }
          }}
        >
          <p>This deletes the device, its credentials and all its telemetry. Type its name to confirm.</p>
          <Field label="Device name">
            <input value={confirmName} onInput={(e) => setConfirmName(e.currentTarget.value)} />
          </Field>
          <ErrorBox error={error} />
          <div class="actions">
            <button type="submit" class="danger" disabled={busy || confirmName !== device.name}>
              Delete for good
            </button>
            <button type="button" class="secondary" onClick={() => setDeleting(false)}>
              Cancel
            </button>
          </div>
        </form>
      </Dialog>
    </div>
  );
}
