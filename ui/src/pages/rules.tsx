import { useLocation, useRoute } from "preact-iso";
import { useEffect, useState } from "preact/hooks";
import { ApiError, get, request } from "../api";
import { CopyButton, ErrorBox, Field, useAction, useLoad } from "../components/ui";
import { shown } from "../format";
import { useCan } from "../session";
import type { DeviceList, Rule } from "../types";
import { NotFound } from "./notfound";

interface TestReport {
  results: { device_name: string; matched: boolean | null; key: string | null; value: number | null; threshold: number | null; would_fire: boolean }[];
}

export function Rules() {
  const rules = useLoad(() => get<{ rules: Rule[]; total: number }>("/rules?limit=500"), []);
  const canWrite = useCan("developer");
  const [report, setReport] = useState<{ name: string; report: TestReport } | null>(null);
  const { error, run } = useAction();
  return (
    <section>
      <div class="title-row">
        <h1>Rules</h1>
        {canWrite ? (
          <a class="button" href="/rules/new">
            New rule
          </a>
        ) : null}
      </div>
      <ErrorBox error={rules.error || error} />
      <table>
        <caption class="sr-only">Rules</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Type</th>
            <th scope="col">Severity</th>
            <th scope="col">Enabled</th>
            {canWrite ? <th scope="col">Actions</th> : null}
          </tr>
        </thead>
        <tbody>
          {(rules.data?.rules ?? []).map((r) => (
            <tr key={r.id}>
              <td>{canWrite ? <a href={`/rules/${r.id}`}>{r.name}</a> : r.name}</td>
              <td>{r.rule_type}</td>
              <td>
                <span class={`badge sev-${r.severity}`}>{r.severity}</span>
              </td>
              <td>{r.enabled ? "yes" : "no"}</td>
              {canWrite ? (
                <td class="actions">
                  <button
                    type="button"
                    class="secondary"
                    aria-label={`${r.enabled ? "Disable" : "Enable"} rule ${r.name}`}
                    onClick={() =>
                      run(async () => {
                        await request("PUT", `/rules/${r.id}`, { ...ruleBody(r), enabled: !r.enabled });
                        rules.reload();
                      })
                    }
                  >
                    {r.enabled ? "Disable" : "Enable"}
                  </button>
                  <button
                    type="button"
                    class="secondary"
                    aria-label={`Dry-run rule ${r.name}`}
                    onClick={() =>
                      run(async () => {
                        setReport({ name: r.name, report: await request<TestReport>("POST", `/rules/${r.id}/test`) });
                      })
                    }
                  >
                    Dry-run
                  </button>
                  <button
                    type="button"
                    class="danger"
                    aria-label={`Delete rule ${r.name}`}
                    onClick={() =>
                      confirm(`Delete the rule ${r.name}? Its alerts stay.`) &&
                      run(async () => {
                        await request("DELETE", `/rules/${r.id}`);
                        rules.reload();
                      })
                    }
                  >
                    Delete
                  </button>
                </td>
              ) : null}
            </tr>
          ))}
        </tbody>
      </table>
      {report ? (
        <div class="card" role="region" aria-label="Dry-run result">
          <h2>Dry-run of {report.name}</h2>
          <table>
            <thead>
              <tr>
                <th scope="col">Device</th>
                <th scope="col">Matched</th>
                <th scope="col">Key</th>
                <th scope="col">Value</th>
                <th scope="col">Threshold</th>
                <th scope="col">Would fire</th>
              </tr>
            </thead>
            <tbody>
              {report.report.results.map((x, i) => (
                <tr key={i}>
                  <td>{x.device_name}</td>
                  <td>{x.matched === null ? "not enough data" : x.matched ? "yes" : "no"}</td>
                  <td>{x.key ?? "—"}</td>
                  <td>{shown(x.value)}</td>
                  <td>{shown(x.threshold)}</td>
                  <td>{x.would_fire ? "yes" : "no"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  );
}

/** The writable fields of a rule, as the API takes them back. */
export function ruleBody(r: Rule): Record<string, unknown> {
  return {
    name: r.name,
    description: r.description,
    rule_type: r.rule_type,
    condition: r.condition,
    device_id: r.device_id,
    device_type: r.device_type,
    enabled: r.enabled,
    priority: r.priority,
    cooldown_seconds: r.cooldown_seconds,
    severity: r.severity,
    auto_resolve: r.auto_resolve,
    actions: r.actions,
  };
}

const OPERATORS = [">", "<", ">=", "<=", "==", "!="];
const SEVERITIES = ["critical", "high", "medium", "low", "info"];

interface Form {
  name: string;
  description: string;
  rule_type: Rule["rule_type"];
  target: "all" | "device" | "type";
  device_id: string;
  device_type: string;
  severity: string;
  enabled: boolean;
  auto_resolve: boolean;
  cooldown_seconds: string;
  priority: string;
  key: string;
  key2: string;
  operator: string;
  value: string;
  duration_seconds: string;
  function: string;
  window_seconds: string;
  offline_after_seconds: string;
  message: string;
  webhook_url: string;
  emails: string;
}

const EMPTY: Form = {
  name: "",
  description: "",
  rule_type: "threshold",
  target: "all",
  device_id: "",
  device_type: "",
  severity: "medium",
  enabled: true,
  auto_resolve: false,
  cooldown_seconds: "0",
  priority: "0",
  key: "",
  key2: "",
  operator: ">",
  value: "",
  duration_seconds: "",
  function: "avg",
  window_seconds: "300",
  offline_after_seconds: "300",
  message: "{rule_name}: {key} = {value} on {device_name}",
  webhook_url: "",
  emails: "",
};

function formOf(r: Rule): Form {
  const c = r.condition as Record<string, unknown>;
  const s = (v: unknown) => (v === undefined || v === null ? "" : String(v));
  const alert = r.actions.find((a) => a.type === "alert");
  const hook = r.actions.find((a) => a.type === "webhook");
  const mail = r.actions.find((a) => a.type === "email");
  return {
    ...EMPTY,
    name: r.name,
    description: r.description ?? "",
    rule_type: r.rule_type,
    target: r.device_id ? "device" : r.device_type ? "type" : "all",
    device_id: r.device_id ?? "",
    device_type: r.device_type ?? "",
    severity: r.severity,
    enabled: r.enabled,
    auto_resolve: r.auto_resolve,
    cooldown_seconds: String(r.cooldown_seconds),
    priority: String(r.priority),
    key: s(c.key ?? c.key1),
    key2: s(c.key2),
    operator: s(c.operator) || ">",
    value: s(c.value),
    duration_seconds: s(c.duration_seconds),
    function: s(c.function) || "avg",
    window_seconds: s(c.window_seconds) || "300",
    offline_after_seconds: s(c.offline_after_seconds) || "300",
    message: alert ? String(alert.message ?? EMPTY.message) : "",
    webhook_url: hook ? String(hook.url) : "",
    emails: mail ? (mail.recipients as string[]).join(", ") : "",
  };
}

/** The request body of a form, or an error message for what the API would refuse. */
export function buildRule(f: Form): { body?: Record<string, unknown>; error?: string } {
  const int = (v: string) => (v.trim() === "" ? null : Number(v));
  let condition: Record<string, unknown>;
  switch (f.rule_type) {
    case "threshold":
      if (!f.key.trim() || f.value.trim() === "" || !Number.isFinite(Number(f.value))) return { error: "a key and a numeric value are needed" };
      condition = { key: f.key.trim(), operator: f.operator, value: Number(f.value) };
      if (int(f.duration_seconds) !== null) condition.duration_seconds = int(f.duration_seconds);
      break;
    case "comparison":
      if (!f.key.trim() || !f.key2.trim()) return { error: "two keys are needed" };
      condition = { key1: f.key.trim(), operator: f.operator, key2: f.key2.trim() };
      break;
    case "statistical":
      if (!f.key.trim() || !Number.isFinite(Number(f.value)) || f.value.trim() === "") return { error: "a key and a numeric value are needed" };
      condition = { key: f.key.trim(), function: f.function, window_seconds: int(f.window_seconds), operator: f.operator, value: Number(f.value) };
      break;
    case "time_based":
      condition = { check: "device_offline", offline_after_seconds: int(f.offline_after_seconds) };
      break;
  }
  const actions: Record<string, unknown>[] = [];
  if (f.message.trim()) actions.push({ type: "alert", message: f.message.trim() });
  if (f.webhook_url.trim()) actions.push({ type: "webhook", url: f.webhook_url.trim() });
  const emails = f.emails.split(",").map((e) => e.trim()).filter(Boolean);
  if (emails.length) actions.push({ type: "email", recipients: emails });
  if (!actions.length) return { error: "at least one action is needed (an alert message, a webhook or e-mail)" };
  return {
    body: {
      name: f.name.trim(),
      description: f.description.trim() || null,
      rule_type: f.rule_type,
      condition,
      device_id: f.target === "device" ? f.device_id || null : null,
      device_type: f.target === "type" ? f.device_type.trim() || null : null,
      enabled: f.enabled,
      priority: int(f.priority) ?? 0,
      cooldown_seconds: int(f.cooldown_seconds) ?? 0,
      severity: f.severity,
      auto_resolve: f.auto_resolve,
      actions,
    },
  };
}

export function RuleEdit() {
  const { params } = useRoute();
  const { route } = useLocation();
  const editing = params.id && params.id !== "new" ? params.id : null;
  const [form, setForm] = useState<Form>(EMPTY);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [secret, setSecret] = useState<string | null>(null);
  const devices = useLoad(() => get<DeviceList>("/devices?limit=500"), []);
  const { busy, error, run, setError } = useAction();
  useEffect(() => {
    if (editing) get<Rule>(`/rules/${editing}`).then((r) => setForm(formOf(r)), setLoadError);
  }, [editing]);
  if (loadError instanceof ApiError && (loadError.status === 404 || loadError.status === 422)) return <NotFound what="rule" />;
  const set = <K extends keyof Form>(k: K, v: Form[K]) => setForm({ ...form, [k]: v });
  const text = (k: keyof Form, label: string, opts: { type?: string; required?: boolean; hint?: string } = {}) => (
    <Field label={label} hint={opts.hint}>
      <input
        type={opts.type ?? "text"}
        required={opts.required}
        value={form[k] as string}
        onInput={(e) => set(k, e.currentTarget.value as never)}
      />
    </Field>
  );
  const op = (
    <Field label="Operator">
      <select value={form.operator} onChange={(e) => set("operator", e.currentTarget.value)}>
        {OPERATORS.map((o) => (
          <option key={o} value={o}>
            {o}
          </option>
        ))}
      </select>
    </Field>
  );
  if (secret) {
    return (
      <section>
        <h1>Rule saved</h1>
        <div class="card">
          <p>
            The webhook signing secret, <strong>shown only now</strong>:
          </p>
          <p class="row">
            <code>{secret}</code> <CopyButton text={secret} label="Copy secret" />
          </p>
          <a href="/rules">Back to the rules</a>
        </div>
      </section>
    );
  }
  return (
    <section>
      <h1>{editing ? "Edit rule" : "New rule"}</h1>
      <ErrorBox error={loadError} />
      <form
        class="card"
        onSubmit={async (e) => {
          e.preventDefault();
          const built = buildRule(form);
          if (built.error) {
            setError(new Error(built.error));
            return;
          }
          await run(async () => {
            const saved = await request<Rule>(editing ? "PUT" : "POST", editing ? `/rules/${editing}` : "/rules", built.body);
            if (saved.webhook_secret) setSecret(saved.webhook_secret);
            else route("/rules");
          });
        }}
      >
        {text("name", "Name", { required: true })}
        {text("description", "Description")}
        <Field label="Rule type">
          <select value={form.rule_type} onChange={(e) => set("rule_type", e.currentTarget.value as Form["rule_type"])}>
            <option value="threshold">Threshold: a key against a value</option>
            <option value="comparison">Comparison: two keys</option>
            <option value="statistical">Statistical: a function over a window</option>
            <option value="time_based">Time-based: device offline</option>
          </select>
        </Field>
        <fieldset>
          <legend>Condition</legend>
          {form.rule_type === "threshold" ? (
            <>
              {text("key", "Key", { required: true })}
              {op}
              {text("value", "Value", { type: "number", required: true })}
              {text("duration_seconds", "For at least (seconds)", { type: "number", hint: "optional" })}
            </>
          ) : null}
          {form.rule_type === "comparison" ? (
            <>
              {text("key", "First key", { required: true })}
              {op}
              {text("key2", "Second key", { required: true })}
            </>
          ) : null}
          {form.rule_type === "statistical" ? (
            <>
              {text("key", "Key", { required: true })}
              <Field label="Function">
                <select value={form.function} onChange={(e) => set("function", e.currentTarget.value)}>
                  {["avg", "min", "max", "stddev", "count"].map((f) => (
                    <option key={f} value={f}>
                      {f}
                    </option>
                  ))}
                </select>
              </Field>
              {text("window_seconds", "Window (seconds)", { type: "number", required: true })}
              {op}
              {text("value", "Value", { type: "number", required: true })}
            </>
          ) : null}
          {form.rule_type === "time_based" ? text("offline_after_seconds", "Offline after (seconds, at least 10)", { type: "number", required: true }) : null}
        </fieldset>
        <fieldset>
          <legend>Applies to</legend>
          <Field label="Target">
            <select value={form.target} onChange={(e) => set("target", e.currentTarget.value as Form["target"])}>
              <option value="all">All devices</option>
              <option value="device">One device</option>
              <option value="type">Devices of a type</option>
            </select>
          </Field>
          {form.target === "device" ? (
            <Field label="Device">
              <select value={form.device_id} onChange={(e) => set("device_id", e.currentTarget.value)}>
                <option value="">Choose…</option>
                {(devices.data?.devices ?? []).map((d) => (
                  <option key={d.id} value={d.id}>
                    {d.name}
                  </option>
                ))}
              </select>
            </Field>
          ) : null}
          {form.target === "type" ? text("device_type", "Device type") : null}
        </fieldset>
        <fieldset>
          <legend>Actions</legend>
          {text("message", "Alert message", { hint: "placeholders: {rule_name} {key} {value} {threshold} {device_name}; empty: no alert" })}
          {text("webhook_url", "Webhook URL", { type: "url", hint: "optional" })}
          {text("emails", "E-mail recipients", { hint: "optional, comma-separated" })}
        </fieldset>
        <Field label="Severity">
          <select value={form.severity} onChange={(e) => set("severity", e.currentTarget.value)}>
            {SEVERITIES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </Field>
        {text("cooldown_seconds", "Cooldown (seconds)", { type: "number" })}
        {text("priority", "Priority (-1000 to 1000)", { type: "number" })}
        <label class="check">
          <input type="checkbox" checked={form.enabled} onChange={(e) => set("enabled", e.currentTarget.checked)} /> Enabled
        </label>
        <label class="check">
          <input type="checkbox" checked={form.auto_resolve} onChange={(e) => set("auto_resolve", e.currentTarget.checked)} /> Resolve
          automatically when the condition clears
        </label>
        <ErrorBox error={error} />
        <div class="actions">
          <button type="submit" disabled={busy}>
            Save rule
          </button>
          <a class="button secondary" href="/rules">
            Cancel
          </a>
        </div>
      </form>
    </section>
  );
}
