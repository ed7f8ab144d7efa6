// Small pure helpers shared by the pages (unit-tested).

import type { Role } from "./types";

const RANK: Record<Role, number> = { viewer: 0, operator: 1, developer: 2, admin: 3 };

/** Whether a member with `role` (or a system admin) may do what needs `minimum`. */
export function can(role: Role | null | undefined, minimum: Role, systemAdmin = false): boolean {
  if (systemAdmin) return true;
  return role ? RANK[role] >= RANK[minimum] : false;
}

export interface RangeChoice {
  label: string;
  seconds: number;
}
export const RANGES: RangeChoice[] = [
  { label: "15 minutes", seconds: 900 },
  { label: "1 hour", seconds: 3600 },
  { label: "6 hours", seconds: 6 * 3600 },
  { label: "24 hours", seconds: 86400 },
  { label: "7 days", seconds: 7 * 86400 },
  { label: "30 days", seconds: 30 * 86400 },
];

/** How a range is fetched: raw points up to an hour, else aggregate buckets (≤ ~1500). */
export function chartSource(seconds: number): { kind: "raw" } | { kind: "aggregate"; interval: string } {
  if (seconds <= 3600) return { kind: "raw" };
  const steps: [number, string][] = [
    [60, "1m"],
    [300, "5m"],
    [900, "15m"],
    [3600, "1h"],
    [6 * 3600, "6h"],
    [86400, "1d"],
  ];
  for (const [width, name] of steps) {
    if (seconds / width <= 1500) return { kind: "aggregate", interval: name };
  }
  return { kind: "aggregate", interval: "1d" };
}

export function percent(p: number | null | undefined): string {
  return p === null || p === undefined ? "no limit" : `${Math.round(p * 10) / 10}%`;
}

export function num(n: number | null | undefined): string {
  return n === null || n === undefined ? "∞" : n.toLocaleString("en");
}

export function when(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleString("en-GB", { dateStyle: "short", timeStyle: "medium" });
}

export function shown(v: unknown): string {
  if (v === null || v === undefined) return "—";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(3).replace(/0+$/, "");
  return String(v);
}
