import type { Clock } from './clock.js';

/**
 * Counts failures per key in a fixed window. In memory: one process serves the app, and a
 * restart forgetting counts is acceptable for login throttling.
 */
export function createRateLimit(opts: { limit: number; windowMs: number; clock: Clock; maxKeys?: number }) {
  const entries = new Map<string, { count: number; resetAt: number }>();
  const maxKeys = opts.maxKeys ?? 50_000;

  function live(key: string) {
    const entry = entries.get(key);
    if (entry && entry.resetAt <= opts.clock()) {
      entries.delete(key);
      return undefined;
    }
    return entry;
  }

  function prune() {
    const now = opts.clock();
    for (const [key, entry] of entries) if (entry.resetAt <= now) entries.delete(key);
    // Still full of live keys: drop the oldest rather than grow without bound.
    for (const key of entries.keys()) {
      if (entries.size < maxKeys) break;
      entries.delete(key);
    }
  }

  return {
    /** 0 when allowed, else how many seconds until the key may try again. */
    retryAfterSeconds(key: string): number {
      const entry = live(key);
      if (!entry || entry.count < opts.limit) return 0;
      return Math.max(1, Math.ceil((entry.resetAt - opts.clock()) / 1000));
    },
    recordFailure(key: string): void {
      const entry = live(key);
      if (entry) {
        entry.count++;
        return;
      }
      if (entries.size >= maxKeys) prune();
      entries.set(key, { count: 1, resetAt: opts.clock() + opts.windowMs });
    },
    reset(key: string): void {
      entries.delete(key);
    },
  };
}

export type RateLimit = ReturnType<typeof createRateLimit>;
