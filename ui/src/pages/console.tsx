import { useState } from "preact/hooks";
import { useLocation } from "preact-iso";
import { get, qs, request } from "../api";
import { Dialog, ErrorBox, Field, Notice, Pager, useAction, useLoad } from "../components/ui";
import { num, when } from "../format";
import { useSession } from "../session";
import type { Tenant, TenantList, Tier } from "../types";

const PAGE = 25;
const LIMITS = [
  ["max_devices", "Devices"],
  ["max_users", "Users"],
  ["max_telemetry_points_per_day", "Points per day"],
  ["max_retention_days", "Retention (days)"],
] as const;

export function Console() {
  const { user } = useSession();
  const { query, route } = useLocation();
  const search = query.search ?? "";
  const tier = query.tier ?? "";
  const status = query.status ?? "";
  const page = Number(query.page ?? 1) || 1;
  const tiers = useLoad(() => get<Tier[]>("/tiers"), []);
  const list = useLoad(() => get<TenantList>(`/tenants${qs({ search, tier, status, page, limit: PAGE })}`), [search, tier, status, page]);
  const [editing, setEditing] = useState<Tenant | null>(null);
  const [deleting, setDeleting] = useState<Tenant | null>(null);
  const [creating, setCreating] = useState(false);
  const [notice, setNotice] = useState("");
  const { error, run } = useAction();
  if (!user.is_system_admin) return <p>System admins only.</p>;
  const set = (c: Record<string, string | number>) => route(`/admin${qs({ search, tier, status, page: 1, ...c })}`, true);
  return (
    <section>
      <div class="title-row">
        <h1>System admin: tenants</h1>
        <button type="button" onClick={() => setCreating(true)}>
          New tenant
        </button>
      </div>
      <form class="filters" role="search" aria-label="Filter tenants" onSubmit={(e) => e.preventDefault()}>
        <Field label="Search name or slug">
          <input type="search" value={search} onChange={(e) => set({ search: e.currentTarget.value })} />
        </Field>
        <Field label="Tier">
          <select value={tier} onChange={(e) => set({ tier: e.currentTarget.value })}>
            <option value="">Any</option>
            {(tiers.data ?? []).map((t) => (
              <option key={t.name} value={t.name}>
                {t.display_name}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Status">
          <select value={status} onChange={(e) => set({ status: e.currentTarget.value })}>
            <option value="">Any</option>
            {["active", "suspended", "trial", "churned"].map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </Field>
      </form>
      {notice ? <Notice>{notice}</Notice> : null}
      <ErrorBox error={error || list.error} />
      <table>
        <caption class="sr-only">Tenants</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Slug</th>
            <th scope="col">Tier</th>
            <th scope="col">Status</th>
            <th scope="col">Devices</th>
            <th scope="col">Users</th>
            <th scope="col">Created</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {(list.data?.tenants ?? []).map((t) => (
            <tr key={t.id}>
              <td>{t.name}</td>
              <td>
                <code>{t.slug}</code>
              </td>
              <td>{t.tier}</td>
              <td>
                <span class={`badge ${t.status}`}>{t.status}</span>
              </td>
              <td>{num(t.effective_limits.max_devices)}</td>
              <td>{num(t.effective_limits.max_users)}</td>
              <td>{when(t.created_at)}</td>
              <td class="actions">
                <button type="button" class="secondary" aria-label={`Tier and quotas of ${t.name}`} onClick={() => setEditing(t)}>
                  Tier and quotas
                </button>
                <button
                  type="button"
                  class="secondary"
                  aria-label={`${t.status === "suspended" ? "Activate" : "Suspend"} ${t.name}`}
                  onClick={() =>
                    run(async () => {
                      await request("POST", `/tenants/${t.id}/${t.status === "suspended" ? "activate" : "suspend"}`);
                      setNotice(`${t.name} ${t.status === "suspended" ? "activated" : "suspended"}.`);
                      list.reload();
                    })
                  }
                >
                  {t.status === "suspended" ? "Activate" : "Suspend"}
                </button>
                <button type="button" class="danger" aria-label={`Delete ${t.name}`} onClick={() => setDeleting(t)}>
                  Delete
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {list.data ? <Pager total={list.data.total} limit={PAGE} offset={(page - 1) * PAGE} onOffset={(o) => set({ page: o / PAGE + 1 })} /> : null}
      <Dialog title="New tenant" open={creating} onClose={() => setCreating(false)}>
        <CreateTenant
          tiers={tiers.data ?? []}
          onDone={(t) => {
            setCreating(false);
            if (t) {
              setNotice(`${t.name} created.`);
              list.reload();
            }
          }}
        />
      </Dialog>
      <Dialog title="Tier and quotas" open={!!editing} onClose={() => setEditing(null)}>
        {editing ? (
          <EditLimits
            tenant={editing}
            tiers={tiers.data ?? []}
            onDone={(changed) => {
              setEditing(null);
              if (changed) list.reload();
            }}
          />
        ) : null}
      </Dialog>
      <Dialog title="Delete tenant" open={!!deleting} onClose={() => setDeleting(null)}>
        {deleting ? (
          <DeleteTenant
            tenant={deleting}
            onDone={(done) => {
              setDeleting(null);
              if (done) {
                setNotice(`${deleting.name} deleted.`);
                list.reload();
              }
            }}
          />
        ) : null}
      </Dialog>
    </section>
  );
}

function CreateTenant({ tiers, onDone }: { tiers: Tier[]; onDone: (t: Tenant | null) => void }) {
  const [name, setName] = useState("");
  const [slug, setSlug] = useState("");
  const [tier, setTier] = useState(tiers[0]?.name ?? "");
  const { busy, error, run } = useAction();
  return (
    <form
      onSubmit={async (e) => {
        e.preventDefault();
        await run(async () => onDone(await request<Tenant>("POST", "/tenants", { name, slug, tier })));
      }}
    >
      <Field label="Name">
        <input required value={name} onInput={(e) => setName(e.currentTarget.value)} />
      </Field>
      <Field label="Slug" hint="lower-case letters, digits and dashes">
        <input required value={slug} onInput={(e) => setSlug(e.currentTarget.value)} />
      </Field>
      <Field label="Tier">
        <select value={tier} onChange={(e) => setTier(e.currentTarget.value)}>
          {tiers.map((t) => (
            <option key={t.name} value={t.name}>
              {t.display_name}
            </option>
          ))}
        </select>
      </Field>
      <ErrorBox error={error} />
      <div class="actions">
        <button type="submit" disabled={busy}>
          Create tenant
        </button>
        <button type="button" class="secondary" onClick={() => onDone(null)}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function EditLimits({ tenant, tiers, onDone }: { tenant: Tenant; tiers: Tier[]; onDone: (changed: boolean) => void }) {
  const [tier, setTier] = useState(tenant.tier);
  const [limits, setLimits] = useState<Record<string, string>>(
    Object.fromEntries(LIMITS.map(([k]) => [k, tenant[k] === null ? "" : String(tenant[k])])),
  );
  const { busy, error, run } = useAction();
  return (
    <form
      onSubmit={async (e) => {
        e.preventDefault();
        const body: Record<string, unknown> = { tier };
        for (const [k] of LIMITS) body[k] = limits[k].trim() === "" ? null : Number(limits[k]);
        if (await run(() => request("PATCH", `/tenants/${tenant.id}`, body))) onDone(true);
      }}
    >
      <p>{tenant.name}: an empty limit follows the tier's default.</p>
      <Field label="Tier">
        <select value={tier} onChange={(e) => setTier(e.currentTarget.value)}>
          {tiers.map((t) => (
            <option key={t.name} value={t.name}>
              {t.display_name}
            </option>
          ))}
        </select>
      </Field>
      {LIMITS.map(([k, label]) => (
        <Field key={k} label={label}>
          <input type="number" min={0} value={limits[k]} onInput={(e) => setLimits({ ...limits, [k]: e.currentTarget.value })} />
        </Field>
      ))}
      <ErrorBox error={error} />
      <div class="actions">
        <button type="submit" disabled={busy}>
          Save
        </button>
        <button type="button" class="secondary" onClick={() => onDone(false)}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function DeleteTenant({ tenant, onDone }: { tenant: Tenant; onDone: (done: boolean) => void }) {
  const [typed, setTyped] = useState("");
  const { busy, error, run } = useAction();
  return (
    <form
      onSubmit={async (e) => {
        e.preventDefault();
        if (await run(() => request("DELETE", `/tenants/${tenant.id}`))) onDone(true);
      }}
    >
      <p>
        Deleting <strong>{tenant.name}</strong> removes all its devices, data and members. Type its slug <code>{tenant.slug}</code> to confirm.
      </p>
      <Field label="Slug of the tenant">
        <input value={typed} onInput={(e) => setTyped(e.currentTarget.value)} />
      </Field>
      <ErrorBox error={error} />
      <div class="actions">
        <button type="submit" class="danger" disabled={busy || typed !== tenant.slug}>
          Delete tenant for good
        </button>
        <button type="button" class="secondary" onClick={() => onDone(false)}>
          Cancel
        </button>
      </div>
    </form>
  );
}
