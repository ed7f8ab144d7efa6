// The one way the UI talks to the server: the public API under /api/v1.
//
// The access token lives only in this module's memory. The refresh token is an HttpOnly,
// SameSite=Strict cookie scoped to /api/v1/auth (cookie mode of the auth routes): script on
// the page can never read it. Refreshing is serialised across tabs with the Web Locks API,
// because a refresh token is spent on use.

import type { Session, User } from "./types";

export const API = "/api/v1";

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly detail: string;
  readonly body: Record<string, unknown>;

  constructor(status: number, body: Record<string, unknown>) {
    const detail =
      typeof body.detail === "string" && body.detail
        ? body.detail
        : typeof body.title === "string"
          ? body.title
          : `request failed (${status})`;
    super(detail);
    this.status = status;
    this.code = typeof body.code === "string" ? body.code : "error";
    this.detail = detail;
    this.body = body;
  }
}

/** The message to show for any error: an API problem's `detail`, or the error's text. */
export function errorText(err: unknown): string {
  if (err instanceof ApiError) return err.detail;
  if (err instanceof Error) return err.message;
  return String(err);
}

type Listener = (user: User | null) => void;

let accessToken: string | null = null;
let expiresAt = 0;
let currentUser: User | null = null;
const listeners = new Set<Listener>();

export function onSession(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function user(): User | null {
  return currentUser;
}

export function accessTokenNow(): string | null {
  return accessToken;
}

function setSession(session: Session | null): void {
  accessToken = session ? session.access_token : null;
  expiresAt = session ? Date.now() + session.expires_in * 1000 : 0;
  currentUser = session ? session.user : null;
  for (const l of listeners) l(currentUser);
}

async function problem(res: Response): Promise<ApiError> {
  let body: Record<string, unknown> = {};
  try {
    body = (await res.json()) as Record<string, unknown>;
  } catch {
    body = { detail: res.statusText || `request failed (${res.status})` };
  }
  return new ApiError(res.status, body);
}

async function post(path: string, body?: unknown): Promise<Response> {
  return fetch(API + path, {
    method: "POST",
    credentials: "same-origin",
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  const locks = (navigator as Navigator & { locks?: LockManager }).locks;
  if (locks) return locks.request("iiot-refresh", fn) as Promise<T>;
  return fn();
}

let refreshing: Promise<boolean> | null = null;

/** Exchange the refresh cookie for a new access token; false when signed out. */
export function refresh(): Promise<boolean> {
  if (!refreshing) {
    refreshing = withLock(async () => {
      const res = await post("/auth/refresh");
      if (!res.ok) {
        setSession(null);
        return false;
      }
      setSession((await res.json()) as Session);
      return true;
    }).finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

export async function signIn(email: string, password: string): Promise<User> {
  const res = await post("/auth/login?cookie=true", { email, password });
  if (!res.ok) throw await problem(res);
  const session = (await res.json()) as Session;
  setSession(session);
  return session.user;
}

export async function signOut(): Promise<void> {
  try {
    await post("/auth/logout");
  } finally {
    setSession(null);
  }
}

export async function switchTenant(tenantId: string): Promise<User> {
  const session = await request<Session>("POST", "/auth/switch-tenant?cookie=true", {
    tenant_id: tenantId,
  });
  setSession(session);
  return session.user;
}

/** A fresh access token (refreshed when it is about to expire), or null when signed out. */
export async function token(): Promise<string | null> {
  if (accessToken && Date.now() < expiresAt - 30_000) return accessToken;
  if (!(await refresh())) return null;
  return accessToken;
}

export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  for (let attempt = 0; attempt < 2; attempt++) {
    const bearer = await token();
    const headers: Record<string, string> = { Accept: "application/json" };
    if (bearer) headers.Authorization = `Bearer ${bearer}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(API + path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status === 401 && attempt === 0 && bearer) {
      // Expired or revoked: try one refresh, then give up.
      accessToken = null;
      continue;
    }
    if (!res.ok) throw await problem(res);
    if (res.status === 204) return undefined as T;
    return (await res.json()) as T;
  }
  throw new ApiError(401, { detail: "signed out" });
}

export const get = <T>(path: string) => request<T>("GET", path);

/** A query string from the defined, non-empty values. */
export function qs(params: Record<string, string | number | boolean | null | undefined>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") p.set(k, String(v));
  }
  const s = p.toString();
  return s ? `?${s}` : "";
}

/** Refresh the signed-in user (after a change of memberships). */
export async function reloadUser(): Promise<void> {
  const me = await get<User>("/auth/me");
  currentUser = me;
  for (const l of listeners) l(currentUser);
}
