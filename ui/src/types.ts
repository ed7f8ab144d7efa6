// Wire shapes of the public API (/api/v1), as used by the UI.

export type Role = "viewer" | "operator" | "developer" | "admin";

export interface TenantRef {
  id: string;
  name: string;
  slug: string;
}
export interface Membership extends TenantRef {
  role: Role;
  status: string;
}
export interface User {
  id: string;
  email: string;
  full_name: string | null;
  is_system_admin: boolean;
  role: Role | null;
  is_tenant_admin: boolean;
  tenant: TenantRef | null;
  tenants: Membership[];
}
export interface Session {
  access_token: string;
  token_type: string;
  expires_in: number;
  user: User;
}

export interface Branding {
  logo_url: string | null;
  primary_color: string | null;
  secondary_color: string | null;
}
export interface Limits {
  max_devices: number | null;
  max_users: number | null;
  max_telemetry_points_per_day: number | null;
  max_retention_days: number | null;
  api_requests_per_minute?: number | null;
}
export interface Tenant extends Limits {
  id: string;
  name: string;
  slug: string;
  status: string;
  tier: string;
  effective_limits: Limits;
  enabled_features: string[];
  branding: Branding;
  settings: Record<string, unknown>;
  created_at: string;
  updated_at: string;
}
export interface TenantList {
  tenants: Tenant[];
  total: number;
  page: number;
  limit: number;
}
export interface Tier extends Limits {
  name: string;
  display_name: string;
  features: string[];
}
export interface SeatUsage {
  used: number;
  limit: number | null;
  percentage: number | null;
}
export interface Quotas {
  devices: SeatUsage;
  users: SeatUsage;
  telemetry_points: {
    used_today: number;
    limit_per_day: number | null;
    percentage: number | null;
    resets_at: string;
  };
  data_retention: { current_days: number | null; oldest_data_age_days: number | null };
}
export interface Stats {
  device_count: number;
  user_count: number;
  invited_count: number;
  rule_count: number;
  alerts_24h: number;
  active_alerts: number;
  telemetry_points_today: number;
}

export interface Member {
  user_id: string;
  email: string;
  full_name: string | null;
  role: Role;
  is_tenant_admin: boolean;
  status: "active" | "invited";
  created_at: string;
}

export type Value = number | boolean | string | null;
export interface LatestValue {
  value: Value;
  ts: string;
  unit?: string | null;
  quality?: string | null;
}
export interface Device {
  id: string;
  tenant_id: string;
  name: string;
  type: string | null;
  location: string | null;
  area: string | null;
  protocol: string | null;
  config: Record<string, unknown>;
  metadata: Record<string, unknown>;
  status: "online" | "offline" | "disabled";
  last_seen: string | null;
  created_at: string;
  updated_at: string;
}
export interface DeviceDetail extends Device {
  latest_telemetry: Record<string, LatestValue>;
}
export interface DeviceList {
  devices: Device[];
  total: number;
  limit: number;
  offset: number;
}

export interface Rule {
  id: string;
  name: string;
  description: string | null;
  rule_type: "threshold" | "comparison" | "statistical" | "time_based";
  condition: Record<string, unknown>;
  device_id: string | null;
  device_type: string | null;
  enabled: boolean;
  priority: number;
  cooldown_seconds: number;
  severity: string;
  auto_resolve: boolean;
  actions: Record<string, unknown>[];
  webhook_secret?: string | null;
}

export interface Alert {
  id: string;
  rule_id: string | null;
  rule_name: string;
  device_id: string | null;
  device_name: string | null;
  severity: string;
  state: "new" | "acknowledged" | "investigating" | "resolved";
  message: string;
  key: string | null;
  value: number | null;
  threshold: number | null;
  occurrence_count: number;
  created_at: string;
  last_occurred_at: string;
  acknowledged_at: string | null;
  investigating_at: string | null;
  resolved_at: string | null;
  tta_minutes: number;
  ttr_minutes: number;
  tta_due_at: string;
  ttr_due_at: string;
  tta_breached: boolean;
  ttr_breached: boolean;
}
export interface AlertDetail extends Alert {
  history: {
    from_state: string | null;
    to_state: string;
    actor_type: string;
    actor_id: string | null;
    notes: string | null;
    created_at: string;
  }[];
}

export interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  scopes: string[];
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
  key?: string;
}
export interface AuditEvent {
  id: string;
  created_at: string;
  actor_type: string;
  actor_id: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
  ip: string | null;
}
