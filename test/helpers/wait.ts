// Bounded waits: a promise that settles, or after a limit a failure naming what the test waited
// for and what it saw meanwhile, instead of a test that hangs until the runner's timeout.

/** `p`, or after `ms` a rejection: "timed out after N s waiting for <what>" and `seen()`, if given. */
export function within<T>(p: Promise<T>, ms: number, what: string, seen?: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const more = seen?.();
      reject(new Error(`timed out after ${ms / 1000} s waiting for ${what}${more ? `; seen meanwhile:\n${more}` : ''}`));
    }, ms);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

/** Polls `cond` every 10 ms until it holds; past `ms`, fails naming `what`. */
export async function until(cond: () => boolean, what: string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The last `n` events, one short line each: what a timed-out wait saw instead. */
export function lastEvents(events: readonly unknown[], n = 8): string {
  if (!events.length) return '(no events)';
  return events.slice(-n).map((e) => {
    const s = JSON.stringify(e);
    return s.length > 240 ? `${s.slice(0, 240)}...` : s;
  }).join('\n  ');
}
