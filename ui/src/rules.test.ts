import { describe, expect, it } from "vitest";
import { buildRule } from "./pages/rules";

const base = {
  name: "Hot",
  description: "",
  rule_type: "threshold" as const,
  target: "all" as const,
  device_id: "",
  device_type: "",
  severity: "high",
  enabled: true,
  auto_resolve: false,
  cooldown_seconds: "0",
  priority: "0",
  key: "temperature",
  key2: "",
  operator: ">",
  value: "80",
  duration_seconds: "",
  function: "avg",
  window_seconds: "300",
  offline_after_seconds: "300",
  message: "{rule_name}: {key} = {value}",
  webhook_url: "",
  emails: "",
};

describe("buildRule", () => {
  it("builds a threshold rule body as the API takes it", () => {
    const { body, error } = buildRule(base);
    expect(error).toBeUndefined();
    expect(body).toMatchObject({
      rule_type: "threshold",
      condition: { key: "temperature", operator: ">", value: 80 },
      actions: [{ type: "alert", message: "{rule_name}: {key} = {value}" }],
      device_id: null,
      device_type: null,
    });
  });

  it("builds the condition of each rule type", () => {
    expect(buildRule({ ...base, rule_type: "comparison", key2: "setpoint" }).body?.condition).toEqual({
      key1: "temperature",
      operator: ">",
      key2: "setpoint",
    });
    expect(buildRule({ ...base, rule_type: "statistical" }).body?.condition).toEqual({
      key: "temperature",
      function: "avg",
      window_seconds: 300,
      operator: ">",
      value: 80,
    });
    expect(buildRule({ ...base, rule_type: "time_based" }).body?.condition).toEqual({
      check: "device_offline",
      offline_after_seconds: 300,
    });
  });

  it("refuses what the API would refuse, with a message", () => {
    expect(buildRule({ ...base, value: "hot" }).error).toMatch(/numeric value/);
    expect(buildRule({ ...base, message: "" }).error).toMatch(/at least one action/);
    expect(buildRule({ ...base, rule_type: "comparison" }).error).toMatch(/two keys/);
  });

  it("adds webhook and e-mail actions and targets", () => {
    const { body } = buildRule({ ...base, webhook_url: "https://hooks.example.com/x", emails: "a@x.io, b@x.io", target: "type", device_type: "pump" });
    expect(body?.actions).toEqual([
      { type: "alert", message: "{rule_name}: {key} = {value}" },
      { type: "webhook", url: "https://hooks.example.com/x" },
      { type: "email", recipients: ["a@x.io", "b@x.io"] },
    ]);
    expect(body?.device_type).toBe("pump");
  });
});
