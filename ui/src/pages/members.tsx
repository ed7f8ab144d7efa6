import { useState } from "preact/hooks";
import { get, request } from "../api";
import { ErrorBox, Field, Notice, Pager, useAction, useLoad } from "../components/ui";
import { when } from "../format";
import { useSession } from "../session";
import type { Member, Role } from "../types";

const ROLES: Role[] = ["viewer", "operator", "developer", "admin"];
const PAGE = 50;

export function Members() {
  const { user } = useSession();
  const id = user.tenant!.id;
  const [offset, setOffset] = useState(0);
  const list = useLoad(() => get<{ users: Member[]; total: number }>(`/tenants/${id}/users?limit=${PAGE}&offset=${offset}`), [id, offset]);
  const [email, setEmail] = useState("");
  const [role, setRole] = useState<Role>("viewer");
  const [notice, setNotice] = useState("");
  const { busy, error, run } = useAction();
  const act = async (fn: () => Promise<unknown>, done: string) => {
    setNotice("");
    if (await run(fn)) {
      setNotice(done);
      list.reload();
    }
  };
  return (
    <section>
      <h1>Members</h1>
      <form
        class="card filters"
        aria-label="Invite a member"
        onSubmit={async (e) => {
          e.preventDefault();
          await act(() => request("POST", `/tenants/${id}/users/invite`, { email, role }), `Invitation sent to ${email}.`);
          setEmail("");
        }}
      >
        <Field label="E-mail to invite">
          <input type="email" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        </Field>
        <Field label="Role">
          <select value={role} onChange={(e) => setRole(e.currentTarget.value as Role)}>
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </Field>
        <button type="submit" disabled={busy}>
          Invite
        </button>
      </form>
      {notice ? <Notice>{notice}</Notice> : null}
      <ErrorBox error={error || list.error} />
      <table>
        <caption class="sr-only">Members</caption>
        <thead>
          <tr>
            <th scope="col">E-mail</th>
            <th scope="col">Name</th>
            <th scope="col">Status</th>
            <th scope="col">Role</th>
            <th scope="col">Since</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {(list.data?.users ?? []).map((m) => (
            <tr key={m.user_id}>
              <td>{m.email}</td>
              <td>{m.full_name ?? "—"}</td>
              <td>
                <span class={`badge ${m.status}`}>{m.status === "invited" ? "invitation pending" : "active"}</span>
              </td>
              <td>
                <select
                  aria-label={`Role of ${m.email}`}
                  value={m.role}
                  disabled={busy}
                  onChange={(e) =>
                    act(
                      () => request("PATCH", `/tenants/${id}/users/${m.user_id}/role`, { role: e.currentTarget.value }),
                      `${m.email} is now ${e.currentTarget.value}.`,
                    ).then(() => list.reload())
                  }
                >
                  {ROLES.map((r) => (
                    <option key={r} value={r}>
                      {r}
                    </option>
                  ))}
                </select>
              </td>
              <td>{when(m.created_at)}</td>
              <td class="actions">
                {m.status === "invited" ? (
                  <>
                    <button
                      type="button"
                      class="secondary"
                      aria-label={`Re-send the invitation to ${m.email}`}
                      onClick={() => act(() => request("POST", `/tenants/${id}/users/invite`, { email: m.email, role: m.role }), `Invitation re-sent to ${m.email}.`)}
                    >
                      Re-send
                    </button>
                    <button
                      type="button"
                      class="danger"
                      aria-label={`Withdraw the invitation to ${m.email}`}
                      onClick={() => act(() => request("DELETE", `/tenants/${id}/users/${m.user_id}`), `Invitation to ${m.email} withdrawn.`)}
                    >
                      Withdraw
                    </button>
                  </>
                ) : (
                  <button
                    type="button"
                    class="danger"
                    aria-label={`Remove ${m.email}`}
                    onClick={() =>
                      confirm(`Remove ${m.email} from this tenant?`) &&
                      act(() => request("DELETE", `/tenants/${id}/users/${m.user_id}`), `${m.email} removed.`)
                    }
                  >
                    Remove
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {list.data ? <Pager total={list.data.total} limit={PAGE} offset={offset} onOffset={setOffset} /> : null}
    </section>
  );
}
