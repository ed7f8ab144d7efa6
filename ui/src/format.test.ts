import { describe, expect, it } from "vitest";
import { can, chartSource, RANGES } from "./format";

describe("can", () => {
  it("orders roles and lets system admins do anything", () => {
    expect(can("viewer", "operator")).toBe(false);
    expect(can("developer", "operator")).toBe(true);
    expect(can("admin", "admin")).toBe(true);
    expect(can(null, "viewer")).toBe(false);
    expect(can(null, "admin", true)).toBe(true);
  });
});

describe("chartSource", () => {
  it("uses raw points up to an hour, aggregates beyond", () => {
    expect(chartSource(900)).toEqual({ kind: "raw" });
    expect(chartSource(3600)).toEqual({ kind: "raw" });
    expect(chartSource(6 * 3600)).toEqual({ kind: "aggregate", interval: "1m" });
    expect(chartSource(30 * 86400)).toEqual({ kind: "aggregate", interval: "1h" });
  });

  it("never asks for more than 1500 buckets for any offered range", () => {
    const widths: Record<string, number> = { "1m": 60, "5m": 300, "15m": 900, "1h": 3600, "6h": 21600, "1d": 86400 };
    for (const r of RANGES) {
      const s = chartSource(r.seconds);
      if (s.kind === "aggregate") expect(r.seconds / widths[s.interval]).toBeLessThanOrEqual(1500);
    }
  });
});
