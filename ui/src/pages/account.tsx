import { useState } from "preact/hooks";
import { request } from "../api";
import { ErrorBox, Field, Notice, useAction } from "../components/ui";
import { useSession } from "../session";

export function Account() {
  const { user } = useSession();
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [repeat, setRepeat] = useState("");
  const [done, setDone] = useState(false);
  const { busy, error, run, setError } = useAction();
  return (
    <section>
      <h1>Account</h1>
      <dl class="facts">
        <dt>E-mail</dt>
        <dd>{user.email}</dd>
        <dt>Name</dt>
        <dd>{user.full_name ?? "—"}</dd>
        <dt>Role in the active tenant</dt>
        <dd>{user.role ?? (user.is_system_admin ? "system admin" : "—")}</dd>
      </dl>
      <h2>Change password</h2>
      {done ? <Notice>Your password was changed.</Notice> : null}
      <form
        class="card narrow"
        onSubmit={async (e) => {
          e.preventDefault();
          setDone(false);
          if (next !== repeat) {
            setError(new Error("the new passwords do not match"));
            return;
          }
          const ok = await run(() => request("POST", "/auth/password", { current_password: current, new_password: next }));
          if (ok) {
            setDone(true);
            setCurrent("");
            setNext("");
            setRepeat("");
          }
        }}
      >
        <Field label="Current password">
          <input type="password" autoComplete="current-password" required value={current} onInput={(e) => setCurrent(e.currentTarget.value)} />
        </Field>
        <Field label="New password">
          <input type="password" autoComplete="new-password" required value={next} onInput={(e) => setNext(e.currentTarget.value)} />
        </Field>
        <Field label="Repeat the new password">
          <input type="password" autoComplete="new-password" required value={repeat} onInput={(e) => setRepeat(e.currentTarget.value)} />
        </Field>
        <ErrorBox error={error} />
        <button type="submit" disabled={busy}>
          Change password
        </button>
      </form>
    </section>
  );
}
