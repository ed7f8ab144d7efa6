import { useEffect, useState } from "preact/hooks";
import { request } from "../api";
import { ErrorBox, Field, Notice, useAction } from "../components/ui";
import { num } from "../format";
import { useSession } from "../session";
import type { Tenant } from "../types";

export function Settings() {
  const { tenant, reloadTenant, user } = useSession();
  const [name, setName] = useState("");
  const [logo, setLogo] = useState("");
  const [primary, setPrimary] = useState("");
  const [secondary, setSecondary] = useState("");
  const [settings, setSettings] = useState("{}");
  const [saved, setSaved] = useState(false);
  const { busy, error, run, setError } = useAction();
  useEffect(() => {
    if (!tenant) return;
    setName(tenant.name);
    setLogo(tenant.branding.logo_url ?? "");
    setPrimary(tenant.branding.primary_color ?? "");
    setSecondary(tenant.branding.secondary_color ?? "");
    setSettings(JSON.stringify(tenant.settings, null, 2));
  }, [tenant?.id, tenant?.updated_at]);
  if (!tenant) return <p class="loading">Loading…</p>;
  const limits = tenant.effective_limits;
  return (
    <section>
      <h1>Tenant settings</h1>
      {saved ? <Notice>Saved.</Notice> : null}
      <form
        class="card narrow"
        onSubmit={async (e) => {
          e.preventDefault();
          setSaved(false);
          let parsed: unknown;
          try {
            parsed = JSON.parse(settings || "{}");
          } catch {
            setError(new Error("settings must be a JSON object"));
            return;
          }
          const ok = await run(() =>
            request<Tenant>("PATCH", `/tenants/${tenant.id}`, {
              name,
              branding: { logo_url: logo.trim() || null, primary_color: primary.trim() || null, secondary_color: secondary.trim() || null },
              settings: parsed,
            }),
          );
          if (ok) {
            setSaved(true);
            reloadTenant();
          }
        }}
      >
        <Field label="Name">
          <input required value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </Field>
        <Field label="Logo URL" hint="http(s) URL of an image">
          <input type="url" value={logo} onInput={(e) => setLogo(e.currentTarget.value)} />
        </Field>
        <Field label="Primary colour" hint="#rrggbb">
          <input value={primary} placeholder="#1f6feb" onInput={(e) => setPrimary(e.currentTarget.value)} />
        </Field>
        <Field label="Secondary colour" hint="#rrggbb">
          <input value={secondary} placeholder="#0b3d91" onInput={(e) => setSecondary(e.currentTarget.value)} />
        </Field>
        <Field label="Settings (JSON)">
          <textarea rows={6} value={settings} onInput={(e) => setSettings(e.currentTarget.value)} />
        </Field>
        <ErrorBox error={error} />
        <button type="submit" disabled={busy}>
          Save settings
        </button>
      </form>
      <h2>Tier and quotas</h2>
      <p>{user.is_system_admin ? "Change these in the system admin console." : "Set by the platform operator."}</p>
      <dl class="facts">
        <dt>Tier</dt>
        <dd>{tenant.tier}</dd>
        <dt>Status</dt>
        <dd>{tenant.status}</dd>
        <dt>Devices</dt>
        <dd>{num(limits.max_devices)}</dd>
        <dt>Users</dt>
        <dd>{num(limits.max_users)}</dd>
        <dt>Telemetry points per day</dt>
        <dd>{num(limits.max_telemetry_points_per_day)}</dd>
        <dt>Retention (days)</dt>
        <dd>{num(limits.max_retention_days)}</dd>
        <dt>API requests per minute</dt>
        <dd>{num(limits.api_requests_per_minute)}</dd>
      </dl>
    </section>
  );
}
