import { describe, expect, it } from "vitest";
import { SseParser } from "./sse";

describe("SseParser", () => {
  it("parses events split across chunks", () => {
    const p = new SseParser();
    expect(p.push("retry: 3000\nevent: ready\ndata: {}\n\nevent: tele")).toEqual([{ event: "ready", data: "{}" }]);
    expect(p.push('metry\ndata: {"a":')).toEqual([]);
    expect(p.push("1}\n\n")).toEqual([{ event: "telemetry", data: '{"a":1}' }]);
  });

  it("ignores comments (keep-alives) and joins multi-line data", () => {
    const p = new SseParser();
    expect(p.push(": keep-alive\n\ndata: a\ndata: b\n\n")).toEqual([{ event: "message", data: "a\nb" }]);
  });

  it("accepts CRLF line endings", () => {
    const p = new SseParser();
    expect(p.push("event: alert\r\ndata: x\r\n\r\n")).toEqual([{ event: "alert", data: "x" }]);
  });
});
