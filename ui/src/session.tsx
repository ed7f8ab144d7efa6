// The signed-in user and the active tenant's branding, for every page.

import { createContext } from "preact";
import { useContext } from "preact/hooks";
import { can } from "./format";
import type { Role, Tenant, User } from "./types";

export interface SessionValue {
  user: User;
  tenant: Tenant | null;
  reloadTenant: () => void;
}

export const SessionContext = createContext<SessionValue | null>(null);

export function useSession(): SessionValue {
  const s = useContext(SessionContext);
  if (!s) throw new Error("no session");
  return s;
}

/** Whether the signed-in user may do what needs `minimum` in the active tenant. */
export function useCan(minimum: Role): boolean {
  const { user } = useSession();
  return can(user.role, minimum, user.is_system_admin);
}

/** Apply the tenant's branding colours through CSS custom properties (no inline styles). */
export function applyBranding(tenant: Tenant | null): void {
  const root = document.documentElement.style;
  const b = tenant?.branding;
  if (b?.primary_color) root.setProperty("--primary", b.primary_color);
  else root.removeProperty("--primary");
  if (b?.secondary_color) root.setProperty("--secondary", b.secondary_color);
  else root.removeProperty("--secondary");
}
