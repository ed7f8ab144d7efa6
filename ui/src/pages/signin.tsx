import { useState } from "preact/hooks";
import { useLocation } from "preact-iso";
import { request, signIn } from "../api";
import { ErrorBox, Field, Notice, useAction } from "../components/ui";

export function SignIn() {
  const { query, route } = useLocation();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const { busy, error, run } = useAction();
  return (
    <section class="card narrow">
      <h1>Sign in to iiot</h1>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          const ok = await run(() => signIn(email, password));
          if (ok) {
            const next = query.next && query.next.startsWith("/") && !query.next.startsWith("//") ? query.next : "/";
            route(next === "/signin" ? "/" : next, true);
          }
        }}
      >
        <Field label="E-mail">
          <input type="email" name="email" autoComplete="username" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        </Field>
        <Field label="Password">
          <input
            type="password"
            name="password"
            autoComplete="current-password"
            required
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </Field>
        <ErrorBox error={error} />
        <button type="submit" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
      <p>
        <a href="/forgot-password">Forgot your password?</a>
      </p>
    </section>
  );
}

export function ForgotPassword() {
  const [email, setEmail] = useState("");
  const [sent, setSent] = useState(false);
  const { busy, error, run } = useAction();
  return (
    <section class="card narrow">
      <h1>Forgotten password</h1>
      {sent ? (
        <Notice>If an account uses {email}, an e-mail with a link to set a new password is on its way.</Notice>
      ) : (
        <form
          onSubmit={async (e) => {
            e.preventDefault();
            if (await run(() => request("POST", "/auth/password-reset", { email }))) setSent(true);
          }}
        >
          <Field label="E-mail">
            <input type="email" name="email" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
          </Field>
          <ErrorBox error={error} />
          <button type="submit" disabled={busy}>
            Send reset link
          </button>
        </form>
      )}
      <p>
        <a href="/signin">Back to sign-in</a>
      </p>
    </section>
  );
}
