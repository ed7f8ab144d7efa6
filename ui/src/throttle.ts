// Live pages re-read what they show when events arrive; a busy tenant's events come in bursts.

export interface Throttled {
  (): void;
  /** Drops a call that is waiting for its turn. */
  cancel(): void;
}

/** `fn` at once, then at most once every `ms` while calls keep coming: the calls made inside
 * an interval are folded into one call at its end. */
export function throttle(fn: () => void, ms: number): Throttled {
  let timer: ReturnType<typeof setTimeout> | null = null;
  let last = -Infinity;
  const run = () => {
    timer = null;
    last = Date.now();
    fn();
  };
  const call = () => {
    if (timer !== null) return;
    const wait = last + ms - Date.now();
    if (wait <= 0) run();
    else timer = setTimeout(run, wait);
  };
  call.cancel = () => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
  };
  return call;
}
