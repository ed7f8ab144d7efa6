import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError, errorText, qs, request, signIn, user } from "./api";

afterEach(() => vi.unstubAllGlobals());

function reply(status: number, body: unknown) {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { "Content-Type": status >= 400 ? "application/problem+json" : "application/json" },
  });
}

describe("api", () => {
  it("shows a problem's detail", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => reply(429, { status: 429, code: "rate_limited", detail: "too many sign-in attempts; retry in 60 s" })));
    const err = await signIn("a@b.c", "x").catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(errorText(err)).toBe("too many sign-in attempts; retry in 60 s");
    expect((err as ApiError).code).toBe("rate_limited");
  });

  it("signs in in cookie mode and sends the access token from memory", async () => {
    const calls: [string, RequestInit][] = [];
    vi.stubGlobal(
      "fetch",
      vi.fn(async (url: string, init: RequestInit) => {
        calls.push([url, init]);
        if (url.endsWith("/auth/login?cookie=true")) {
          return reply(200, { access_token: "tok", token_type: "bearer", expires_in: 900, user: { email: "a@b.c" } });
        }
        return reply(200, { ok: true });
      }),
    );
    await signIn("a@b.c", "pw");
    expect(user()?.email).toBe("a@b.c");
    await request("GET", "/devices");
    const [url, init] = calls[1];
    expect(url).toBe("/api/v1/devices");
    expect((init.headers as Record<string, string>).Authorization).toBe("Bearer tok");
  });

  it("builds query strings from the set values only", () => {
    expect(qs({ a: 1, b: "", c: null, d: undefined, e: "x y" })).toBe("?a=1&e=x+y");
    expect(qs({})).toBe("");
  });
});
