import { useState } from "preact/hooks";
import { useLocation } from "preact-iso";
import { get, qs, request } from "../api";
import { CopyButton, ErrorBox, Field, Pager, useAction, useLoad } from "../components/ui";
import { when } from "../format";
import { useSession } from "../session";
import type { ApiKey, AuditEvent } from "../types";

const SCOPES = ["read", "telemetry:write", "manage"];

export function ApiKeys() {
  const list = useLoad(() => get<{ api_keys: ApiKey[]; total: number }>("/api-keys?limit=100"), []);
  const [name, setName] = useState("");
  const [scopes, setScopes] = useState<string[]>(["read"]);
  const [expires, setExpires] = useState("");
  const [created, setCreated] = useState<ApiKey | null>(null);
  const { busy, error, run } = useAction();
  return (
    <section>
      <h1>API keys</h1>
      <form
        class="card"
        aria-label="New API key"
        onSubmit={async (e) => {
          e.preventDefault();
          await run(async () => {
            setCreated(
              await request<ApiKey>("POST", "/api-keys", { name, scopes, expires_at: expires ? new Date(expires).toISOString() : null }),
            );
            setName("");
            list.reload();
          });
        }}
      >
        <Field label="Name">
          <input required value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </Field>
        <fieldset>
          <legend>Scopes</legend>
          {SCOPES.map((s) => (
            <label class="check" key={s}>
              <input
                type="checkbox"
                checked={scopes.includes(s)}
                onChange={(e) => setScopes(e.currentTarget.checked ? [...scopes, s] : scopes.filter((x) => x !== s))}
              />{" "}
              {s}
            </label>
          ))}
        </fieldset>
        <Field label="Expires" hint="optional">
          <input type="datetime-local" value={expires} onInput={(e) => setExpires(e.currentTarget.value)} />
        </Field>
        <ErrorBox error={error} />
        <button type="submit" disabled={busy}>
          Create API key
        </button>
      </form>
      {created?.key ? (
        <div class="card token" role="region" aria-label="New API key">
          <p>
            <strong>Shown only now:</strong>
          </p>
          <p class="row">
            <code>{created.key}</code> <CopyButton text={created.key} label="Copy key" />
          </p>
        </div>
      ) : null}
      <ErrorBox error={list.error} />
      <table>
        <caption class="sr-only">API keys</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Prefix</th>
            <th scope="col">Scopes</th>
            <th scope="col">Created</th>
            <th scope="col">Last used</th>
            <th scope="col">Expires</th>
            <th scope="col">Status</th>
          </tr>
        </thead>
        <tbody>
          {(list.data?.api_keys ?? []).map((k) => (
            <tr key={k.id}>
              <td>{k.name}</td>
              <td>
                <code>{k.prefix}</code>
              </td>
              <td>{k.scopes.join(", ")}</td>
              <td>{when(k.created_at)}</td>
              <td>{when(k.last_used_at)}</td>
              <td>{when(k.expires_at)}</td>
              <td>
                {k.revoked_at ? (
                  `revoked ${when(k.revoked_at)}`
                ) : (
                  <button
                    type="button"
                    class="danger"
                    aria-label={`Revoke API key ${k.name}`}
                    onClick={() =>
                      confirm(`Revoke ${k.name}? It stops working at once.`) &&
                      run(async () => {
                        await request("DELETE", `/api-keys/${k.id}`);
                        list.reload();
                      })
                    }
                  >
                    Revoke
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

const PAGE = 50;

export function Audit() {
  const { user } = useSession();
  const { query, route } = useLocation();
  const action = query.action ?? "";
  const target = query.target_type ?? "";
  const offset = Number(query.offset ?? 0) || 0;
  const id = user.tenant!.id;
  const page = useLoad(
    () => get<{ events: AuditEvent[]; total: number }>(`/tenants/${id}/audit${qs({ action, target_type: target, limit: PAGE, offset })}`),
    [id, action, target, offset],
  );
  const set = (c: Record<string, string | number>) => route(`/audit${qs({ action, target_type: target, offset: 0, ...c })}`, true);
  return (
    <section>
      <h1>Audit trail</h1>
      <form class="filters" role="search" aria-label="Filter the audit trail" onSubmit={(e) => e.preventDefault()}>
        <Field label="Action starts with">
          <input value={action} onChange={(e) => set({ action: e.currentTarget.value })} />
        </Field>
        <Field label="Target type">
          <input value={target} onChange={(e) => set({ target_type: e.currentTarget.value })} />
        </Field>
      </form>
      <ErrorBox error={page.error} />
      <table>
        <caption class="sr-only">Audit events</caption>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Action</th>
            <th scope="col">Actor</th>
            <th scope="col">Target</th>
            <th scope="col">Change</th>
            <th scope="col">Address</th>
          </tr>
        </thead>
        <tbody>
          {(page.data?.events ?? []).map((e) => (
            <tr key={e.id}>
              <td>{when(e.created_at)}</td>
              <td>{e.action}</td>
              <td>
                {e.actor_type} {e.actor_id ? <code>{e.actor_id.slice(0, 8)}</code> : null}
              </td>
              <td>
                {e.target_type ?? "—"} {e.target_id ? <code>{e.target_id.slice(0, 8)}</code> : null}
              </td>
              <td>
                <code class="json">{e.after ? JSON.stringify(e.after) : e.before ? JSON.stringify(e.before) : ""}</code>
              </td>
              <td>{e.ip ?? "—"}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {page.data ? <Pager total={page.data.total} limit={PAGE} offset={offset} onOffset={(o) => set({ offset: o })} /> : null}
    </section>
  );
}
