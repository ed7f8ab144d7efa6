import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { throttle } from "./throttle";

describe("throttle", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("calls at once after a quiet spell", () => {
    const fn = vi.fn();
    const t = throttle(fn, 300);
    t();
    expect(fn).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(1000);
    t();
    expect(fn).toHaveBeenCalledTimes(2);
  });

  it("folds a burst into one call at the end of the interval", () => {
    const fn = vi.fn();
    const t = throttle(fn, 300);
    t();
    vi.advanceTimersByTime(100);
    t();
    t();
    expect(fn).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(199);
    expect(fn).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(1);
    expect(fn).toHaveBeenCalledTimes(2);
    vi.advanceTimersByTime(1000);
    expect(fn).toHaveBeenCalledTimes(2);
  });

  it("drops the waiting call when cancelled", () => {
    const fn = vi.fn();
    const t = throttle(fn, 300);
    t();
    t();
    t.cancel();
    vi.advanceTimersByTime(1000);
    expect(fn).toHaveBeenCalledTimes(1);
  });
});
