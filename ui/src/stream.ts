// Live events of the active tenant from GET /api/v1/stream, read with fetch so that the
// access token goes in the Authorization header (never in a URL). Reconnects by itself;
// `onReset` tells the page to reload what it shows after a gap.

import { API, token } from "./api";
import { SseParser } from "./sse";
import type { Value } from "./types";

export interface TelemetryEvent {
  device_id: string;
  points: [string, string, Value][];
}
export interface AlertEvent {
  id: string;
  state: string | null;
  event: string;
  severity: string | null;
}
export interface StreamHandlers {
  devices?: string[];
  onTelemetry?: (e: TelemetryEvent) => void;
  onAlert?: (e: AlertEvent) => void;
  onReset?: () => void;
  onStatus?: (live: boolean) => void;
}

/** Open the stream; returns a function that closes it. */
export function openStream(h: StreamHandlers): () => void {
  const abort = new AbortController();
  let closed = false;
  let connectedOnce = false;

  const run = async () => {
    let delay = 500;
    while (!closed) {
      try {
        const bearer = await token();
        if (!bearer) return;
        const q = h.devices && h.devices.length ? `?devices=${h.devices.join(",")}` : "";
        const res = await fetch(`${API}/stream${q}`, {
          headers: { Authorization: `Bearer ${bearer}`, Accept: "text/event-stream" },
          signal: abort.signal,
        });
        if (!res.ok || !res.body) {
          if (res.status === 404 || res.status === 403) return;
          throw new Error(`stream answered ${res.status}`);
        }
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        const parser = new SseParser();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          for (const ev of parser.push(value)) {
            if (ev.event === "ready") {
              h.onStatus?.(true);
              if (connectedOnce) h.onReset?.();
              connectedOnce = true;
              delay = 500;
            } else if (ev.event === "telemetry") {
              h.onTelemetry?.(JSON.parse(ev.data) as TelemetryEvent);
            } else if (ev.event === "alert") {
              h.onAlert?.(JSON.parse(ev.data) as AlertEvent);
            }
          }
        }
      } catch (err) {
        if (closed) return;
      }
      h.onStatus?.(false);
      if (closed) return;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10_000);
    }
  };
  void run();
  return () => {
    closed = true;
    abort.abort();
  };
}
