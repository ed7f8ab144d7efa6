import { useState } from "preact/hooks";
import { useLocation } from "preact-iso";
import { get, qs, request } from "../api";
import { CopyButton, ErrorBox, Field, Pager, useAction, useLoad } from "../components/ui";
import { when } from "../format";
import { useCan } from "../session";
import type { Device, DeviceList } from "../types";

const PAGE = 25;

export function Devices() {
  const { query, route } = useLocation();
  const canWrite = useCan("developer");
  const status = query.status ?? "";
  const type = query.type ?? "";
  const area = query.area ?? "";
  const search = query.search ?? "";
  const offset = Number(query.offset ?? 0) || 0;
  const list = useLoad(
    () => get<DeviceList>(`/devices${qs({ status, type, area, search, limit: PAGE, offset })}`),
    [status, type, area, search, offset],
  );
  const set = (changes: Record<string, string | number>) => {
    const next = { status, type, area, search, offset: 0, ...changes };
    route(`/devices${qs(next)}`, true);
  };
  const shown = list.data?.devices ?? [];
  return (
    <section>
      <div class="title-row">
        <h1>Devices</h1>
        {canWrite ? (
          <a class="button" href="/devices/new">
            New device
          </a>
        ) : null}
      </div>
      <form class="filters" role="search" aria-label="Filter devices" onSubmit={(e) => e.preventDefault()}>
        <Field label="Status">
          <select value={status} onChange={(e) => set({ status: e.currentTarget.value })}>
            <option value="">Any</option>
            <option value="online">Online</option>
            <option value="offline">Offline</option>
            <option value="disabled">Disabled</option>
          </select>
        </Field>
        <Field label="Type">
          <input value={type} onChange={(e) => set({ type: e.currentTarget.value })} />
        </Field>
        <Field label="Area">
          <input value={area} onChange={(e) => set({ area: e.currentTarget.value })} />
        </Field>
        <Field label="Search this page">
          <input type="search" value={search} onInput={(e) => set({ search: e.currentTarget.value, offset })} />
        </Field>
      </form>
      <ErrorBox error={list.error} />
      {list.data ? (
        <>
          <table>
            <caption class="sr-only">Devices</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Status</th>
                <th scope="col">Type</th>
                <th scope="col">Area</th>
                <th scope="col">Location</th>
                <th scope="col">Last seen</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((d) => (
                <tr key={d.id}>
                  <td>
                    <a href={`/devices/${d.id}`}>{d.name}</a>
                  </td>
                  <td>
                    <span class={`badge ${d.status}`}>{d.status}</span>
                  </td>
                  <td>{d.type ?? "—"}</td>
                  <td>{d.area ?? "—"}</td>
                  <td>{d.location ?? "—"}</td>
                  <td>{when(d.last_seen)}</td>
                </tr>
              ))}
              {shown.length === 0 ? (
                <tr>
                  <td colSpan={6}>No devices.</td>
                </tr>
              ) : null}
            </tbody>
          </table>
          <p>{list.data.total} devices in all.</p>
          <Pager total={list.data.total} limit={PAGE} offset={offset} onOffset={(o) => set({ offset: o })} />
        </>
      ) : null}
    </section>
  );
}

export interface DeviceFields {
  name: string;
  type: string;
  location: string;
  area: string;
  protocol: string;
}

export function fieldsOf(d?: Device): DeviceFields {
  return {
    name: d?.name ?? "",
    type: d?.type ?? "",
    location: d?.location ?? "",
    area: d?.area ?? "",
    protocol: d?.protocol ?? "",
  };
}

export function bodyOf(f: DeviceFields): Record<string, string | null> {
  const opt = (v: string) => (v.trim() ? v.trim() : null);
  return { name: f.name.trim(), type: opt(f.type), location: opt(f.location), area: opt(f.area), protocol: opt(f.protocol) };
}

export function DeviceForm({ value, onChange }: { value: DeviceFields; onChange: (v: DeviceFields) => void }) {
  const input = (name: keyof DeviceFields, label: string, required = false) => (
    <Field label={label}>
      <input name={name} required={required} value={value[name]} onInput={(e) => onChange({ ...value, [name]: e.currentTarget.value })} />
    </Field>
  );
  return (
    <>
      {input("name", "Name", true)}
      {input("type", "Type")}
      {input("area", "Area")}
      {input("location", "Location")}
      {input("protocol", "Protocol")}
    </>
  );
}

/** The device token, shown once, with ready-to-paste examples. */
export function TokenPanel({ deviceId, token }: { deviceId: string; token: string }) {
  const origin = window.location.origin;
  const curl =
    `curl -X POST ${origin}/api/v1/telemetry \\\n` +
    `  -H 'X-API-Key: ${token}' -H 'Content-Type: application/json' \\\n` +
    `  -d '{"telemetry": {"temperature": 21.5}}'`;
  const mqtt =
    `mosquitto_pub -h ${window.location.hostname} -p 1883 -u '${token}' \\\n` +
    `  -t v1/devices/me/telemetry -m '{"temperature": 21.5}'`;
  return (
    <div class="card token" role="region" aria-label="Device token">
      <h2>Device token</h2>
      <p>
        <strong>Shown only now.</strong> Store it in the device; a new one can be issued by rotating the credentials.
      </p>
      <p class="row">
        <code data-testid="device-token">{token}</code>
        <CopyButton text={token} label="Copy token" />
      </p>
      <h3>Send telemetry with curl</h3>
      <pre>{curl}</pre>
      <CopyButton text={curl} label="Copy curl example" />
      <h3>Send telemetry over MQTT</h3>
      <pre>{mqtt}</pre>
      <CopyButton text={mqtt} label="Copy MQTT example" />
      <p>
        <a href={`/devices/${deviceId}`}>Open the device</a>
      </p>
    </div>
  );
}

export function DeviceNew() {
  const [value, setValue] = useState(fieldsOf());
  const [created, setCreated] = useState<{ id: string; token: string } | null>(null);
  const { busy, error, run } = useAction();
  if (created) {
    return (
      <section>
        <h1>Device created</h1>
        <TokenPanel deviceId={created.id} token={created.token} />
      </section>
    );
  }
  return (
    <section>
      <h1>New device</h1>
      <form
        class="card narrow"
        onSubmit={async (e) => {
          e.preventDefault();
          await run(async () => {
            const d = await request<Device & { token: string }>("POST", "/devices", bodyOf(value));
            setCreated({ id: d.id, token: d.token });
          });
        }}
      >
        <DeviceForm value={value} onChange={setValue} />
        <ErrorBox error={error} />
        <button type="submit" disabled={busy}>
          Create device
        </button>
      </form>
    </section>
  );
}
