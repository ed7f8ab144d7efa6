import { ErrorBoundary, LocationProvider, Route, Router, lazy, useLocation } from "preact-iso";
import { useEffect, useState } from "preact/hooks";
import { errorText, get, onSession, refresh, signOut, switchTenant, user as currentUser } from "./api";
import { applyBranding, SessionContext } from "./session";
import type { Tenant, User } from "./types";
import { SignIn, ForgotPassword } from "./pages/signin";
import { Dashboard } from "./pages/dashboard";
import { NotFound } from "./pages/notfound";

const Devices = lazy(() => import("./pages/devices").then((m) => m.Devices));
const DeviceNew = lazy(() => import("./pages/devices").then((m) => m.DeviceNew));
const DevicePage = lazy(() => import("./pages/device").then((m) => m.DevicePage));
const Alerts = lazy(() => import("./pages/alerts").then((m) => m.Alerts));
const AlertPage = lazy(() => import("./pages/alerts").then((m) => m.AlertPage));
const Rules = lazy(() => import("./pages/rules").then((m) => m.Rules));
const RuleEdit = lazy(() => import("./pages/rules").then((m) => m.RuleEdit));
const Members = lazy(() => import("./pages/members").then((m) => m.Members));
const Settings = lazy(() => import("./pages/settings").then((m) => m.Settings));
const ApiKeys = lazy(() => import("./pages/admin").then((m) => m.ApiKeys));
const Audit = lazy(() => import("./pages/admin").then((m) => m.Audit));
const Console = lazy(() => import("./pages/console").then((m) => m.Console));
const Account = lazy(() => import("./pages/account").then((m) => m.Account));

export function App() {
  const [user, setUser] = useState<User | null>(currentUser());
  const [ready, setReady] = useState(false);
  useEffect(() => {
    const off = onSession(setUser);
    // Resume the session from the refresh cookie, if any.
    refresh().finally(() => setReady(true));
    return off;
  }, []);
  if (!ready) return <p class="loading">Loading…</p>;
  return (
    <LocationProvider>
      {user ? <Shell user={user} /> : <Public />}
    </LocationProvider>
  );
}

function Public() {
  const { path, route } = useLocation();
  useEffect(() => {
    applyBranding(null);
    if (path !== "/signin" && path !== "/forgot-password") {
      route(`/signin?next=${encodeURIComponent(path)}`, true);
    }
  }, [path]);
  return (
    <main class="public" id="main">
      <Router>
        <Route path="/forgot-password" component={ForgotPassword} />
        <Route default component={SignIn} />
      </Router>
    </main>
  );
}

function Shell({ user }: { user: User }) {
  const [tenant, setTenant] = useState<Tenant | null>(null);
  const [switchError, setSwitchError] = useState<unknown>(null);
  const { path, route } = useLocation();
  const tenantId = user.tenant?.id ?? null;
  const loadTenant = () => {
    if (!tenantId) {
      setTenant(null);
      applyBranding(null);
      return;
    }
    get<Tenant>(`/tenants/${tenantId}`).then(
      (t) => {
        setTenant(t);
        applyBranding(t);
      },
      () => setTenant(null),
    );
  };
  useEffect(loadTenant, [tenantId]);
  useEffect(() => {
    if (path === "/signin") route("/", true);
  }, [path]);

  const admin = user.is_system_admin || user.role === "admin";
  const links: [string, string, boolean][] = [
    ["/", "Dashboard", !!tenantId],
    ["/devices", "Devices", !!tenantId],
    ["/alerts", "Alerts", !!tenantId],
    ["/rules", "Rules", !!tenantId],
    ["/members", "Members", !!tenantId && admin],
    ["/settings", "Settings", !!tenantId && admin],
    ["/api-keys", "API keys", !!tenantId && admin],
    ["/audit", "Audit trail", !!tenantId && admin],
    ["/admin", "System admin", user.is_system_admin],
  ];
  const active = (href: string) => (href === "/" ? path === "/" : path.startsWith(href));
  const memberships = user.tenants.filter((t) => t.status === "active");
  return (
    <SessionContext.Provider value={{ user, tenant, reloadTenant: loadTenant }}>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <div class="brand">
          {tenant?.branding.logo_url ? <img src={tenant.branding.logo_url} alt="" class="logo" /> : null}
          <span>{tenant?.name ?? user.tenant?.name ?? "iiot"}</span>
        </div>
        <label class="switcher">
          <span>Tenant</span>
          <select
            aria-label="Active tenant"
            value={tenantId ?? ""}
            onChange={async (e) => {
              const id = (e.target as HTMLSelectElement).value;
              if (!id || id === tenantId) return;
              try {
                setSwitchError(null);
                await switchTenant(id);
                route("/");
              } catch (err) {
                setSwitchError(err);
              }
            }}
          >
            {!tenantId ? <option value="">Choose a tenant</option> : null}
            {memberships.map((t) => (
              <option value={t.id} key={t.id}>
                {t.name} ({t.role})
              </option>
            ))}
            {tenantId && !memberships.some((t) => t.id === tenantId) ? (
              <option value={tenantId}>{user.tenant?.name}</option>
            ) : null}
          </select>
        </label>
        <nav class="account" aria-label="Account">
          <a href="/account">{user.email}</a>
          <button
            type="button"
            class="secondary"
            onClick={async () => {
              await signOut();
            }}
          >
            Sign out
          </button>
        </nav>
      </header>
      {switchError ? (
        <p class="error" role="alert">
          {errorText(switchError)}
        </p>
      ) : null}
      <div class="layout">
        <nav class="side" aria-label="Main">
          <ul>
            {links
              .filter(([, , show]) => show)
              .map(([href, label]) => (
                <li key={href}>
                  <a href={href} aria-current={active(href) ? "page" : undefined}>
                    {label}
                  </a>
                </li>
              ))}
          </ul>
        </nav>
        <main id="main" tabIndex={-1}>
          <ErrorBoundary>
            <Router>
              <Route path="/" component={tenantId ? Dashboard : NoTenant} />
              <Route path="/devices" component={Devices} />
              <Route path="/devices/new" component={DeviceNew} />
              <Route path="/devices/:id" component={DevicePage} />
              <Route path="/alerts" component={Alerts} />
              <Route path="/alerts/:id" component={AlertPage} />
              <Route path="/rules" component={Rules} />
              <Route path="/rules/new" component={RuleEdit} />
              <Route path="/rules/:id" component={RuleEdit} />
              <Route path="/members" component={Members} />
              <Route path="/settings" component={Settings} />
              <Route path="/api-keys" component={ApiKeys} />
              <Route path="/audit" component={Audit} />
              <Route path="/admin" component={Console} />
              <Route path="/account" component={Account} />
              <Route default component={NotFound} />
            </Router>
          </ErrorBoundary>
        </main>
      </div>
    </SessionContext.Provider>
  );
}

function NoTenant() {
  return (
    <section>
      <h1>No active tenant</h1>
      <p>Choose a tenant in the switcher above, or open the system admin console.</p>
    </section>
  );
}
