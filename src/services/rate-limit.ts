import { createHash } from 'node:crypto';
import { isIPv6 } from 'node:net';
import type { Clock } from './clock.js';

/**
 * Failure counters per key, in memory: one process serves the app, and a restart forgetting counts
 * is acceptable for throttling. Every attempt is recorded *before* its slow check (argon2) and
 * forgiven when it succeeds, so a thousand parallel guesses count as a thousand, not as one.
 */
export interface Throttle {
  /** 0 when the key may try now, else how many seconds until it may. */
  retryAfterSeconds(key: string): number;
  recordFailure(key: string): void;
  /** Takes back one recorded failure: the attempt turned out right. */
  forgive(key: string): void;
  reset(key: string): void;
  /** Keys held, for tests of the memory bound. */
  size(): number;
}

const DEFAULT_MAX_KEYS = 20_000;
/** Keys longer than this are hashed, so a flood of long keys costs no more memory than short ones. */
const MAX_PLAIN_KEY = 64;

interface Entry {
  /** failures counted (a fixed window) or still remembered (a backoff, fractional as they fade) */
  count: number;
  updatedAt: number;
  lastFailureAt: number;
  /** fixed windows only: when the window ends */
  windowEndsAt: number;
}

interface Policy {
  /** when the entry no longer matters and may be dropped */
  expiresAt(entry: Entry): number;
  /** the failures the entry holds now */
  countAt(entry: Entry, now: number): number;
  /** the time the key may try again (<= now: allowed) */
  allowedAt(entry: Entry, now: number): number;
  newEntry(now: number): Entry;
}

function createThrottle(policy: Policy, clock: Clock, maxKeys: number): Throttle {
  const entries = new Map<string, Entry>();
  const keyOf = (key: string) =>
    key.length <= MAX_PLAIN_KEY ? key : `#${createHash('sha256').update(key).digest('base64url')}`;

  function live(key: string): Entry | undefined {
    const entry = entries.get(key);
    if (entry && policy.expiresAt(entry) <= clock()) {
      entries.delete(key);
      return undefined;
    }
    return entry;
  }

  /**
   * Full: drop what expired, then the entries holding the fewest failures, so a flood of new keys
   * evicts other flood keys, not the counts that are actually blocking someone.
   */
  function makeRoom() {
    const now = clock();
    for (const [key, entry] of entries) if (policy.expiresAt(entry) <= now) entries.delete(key);
    if (entries.size < maxKeys) return;
    const ranked = [...entries].sort(
      ([, a], [, b]) => policy.countAt(a, now) - policy.countAt(b, now) || a.updatedAt - b.updatedAt,
    );
    const drop = Math.max(1, Math.ceil(maxKeys / 10));
    for (const [key] of ranked.slice(0, drop)) entries.delete(key);
  }

  return {
    retryAfterSeconds(rawKey) {
      const entry = live(keyOf(rawKey));
      if (!entry) return 0;
      const now = clock();
      const at = policy.allowedAt(entry, now);
      return at <= now ? 0 : Math.max(1, Math.ceil((at - now) / 1000));
    },
    recordFailure(rawKey) {
      const key = keyOf(rawKey);
      const now = clock();
      let entry = live(key);
      if (!entry) {
        if (entries.size >= maxKeys) makeRoom();
        entry = policy.newEntry(now);
        entries.set(key, entry);
      }
      entry.count = policy.countAt(entry, now) + 1;
      entry.updatedAt = now;
      entry.lastFailureAt = now;
    },
    forgive(rawKey) {
      const entry = live(keyOf(rawKey));
      if (!entry) return;
      const now = clock();
      entry.count = Math.max(0, policy.countAt(entry, now) - 1);
      entry.updatedAt = now;
    },
    reset(rawKey) {
      entries.delete(keyOf(rawKey));
    },
    size: () => entries.size,
  };
}

/** At most `limit` failures per window; the window starts at the first failure. */
export function createRateLimit(opts: {
  limit: number;
  windowMs: number;
  clock: Clock;
  maxKeys?: number;
}): Throttle {
  return createThrottle(
    {
      expiresAt: (e) => e.windowEndsAt,
      countAt: (e) => e.count,
      allowedAt: (e, now) => (e.count < opts.limit ? now : e.windowEndsAt),
      newEntry: (now) => ({
        count: 0,
        updatedAt: now,
        lastFailureAt: now,
        windowEndsAt: now + opts.windowMs,
      }),
    },
    opts.clock,
    opts.maxKeys ?? DEFAULT_MAX_KEYS,
  );
}

export interface BackoffLimits {
  /** failures allowed back to back */
  freeFailures: number;
  /** one remembered failure fades away per this many ms (the long-run rate a guesser gets) */
  forgetOneMs: number;
  /** the wait after the first failure past the free ones; it doubles with each further failure */
  firstDelayMs: number;
  maxDelayMs: number;
}

/**
 * Growing delays instead of a lockout: after `freeFailures`, each further attempt must wait
 * firstDelayMs, 2×, 4×… (at most maxDelayMs) after the previous failure, while remembered failures
 * fade one per `forgetOneMs`. Over any span T a key gets at most about
 * freeFailures + log2(maxDelayMs / firstDelayMs) + T / max(forgetOneMs, maxDelayMs) failures.
 */
export function createBackoff(opts: BackoffLimits & { clock: Clock; maxKeys?: number }): Throttle {
  const countAt = (e: Entry, now: number) => Math.max(0, e.count - (now - e.updatedAt) / opts.forgetOneMs);
  function allowedAt(e: Entry, now: number) {
    // A failure only partly faded still counts whole, so a second's wait never frees a step.
    const excess = Math.ceil(countAt(e, now)) - opts.freeFailures;
    if (excess < 0) return now;
    return e.lastFailureAt + Math.min(opts.maxDelayMs, opts.firstDelayMs * 2 ** Math.min(excess, 40));
  }
  return createThrottle(
    {
      // Once every failure has faded, the entry blocks nothing.
      expiresAt: (e) => e.updatedAt + e.count * opts.forgetOneMs,
      countAt,
      allowedAt,
      newEntry: (now) => ({ count: 0, updatedAt: now, lastFailureAt: now, windowEndsAt: now }),
    },
    opts.clock,
    opts.maxKeys ?? DEFAULT_MAX_KEYS,
  );
}

/** "Try again in 40 seconds." for a Throttled message, so people know what Retry-After says. */
export function tryAgainIn(seconds: number): string {
  if (seconds <= 1) return 'Try again in a second.';
  if (seconds < 60) return `Try again in ${Math.ceil(seconds)} seconds.`;
  const minutes = Math.ceil(seconds / 60);
  if (minutes < 60) return `Try again in ${minutes === 1 ? 'a minute' : `${minutes} minutes`}.`;
  const hours = Math.round(minutes / 60);
  return `Try again in ${hours === 1 ? 'an hour' : `${hours} hours`}.`;
}

/**
 * The address a throttle counts: an IPv6 client gets a whole /64 from its provider (and picks any
 * address in it at will), so its /64 counts as one address; an IPv4-mapped IPv6 address is its IPv4.
 * Every spelling of one address (zone, case, leading zeros, `::`, a dotted tail) gives one key.
 */
export function addressKey(ip: string): string {
  const bare = ip.replace(/%.*$/, ''); // a zone names the interface, not the client
  if (!isIPv6(bare)) return ip;
  const groups = ipv6Groups(bare);
  const [, , , , , , seventh = 0, eighth = 0] = groups;
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return [seventh >> 8, seventh & 0xff, eighth >> 8, eighth & 0xff].join('.');
  }
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address (`isIPv6` said so). */
function ipv6Groups(address: string): number[] {
  // A dotted IPv4 tail is the last two groups.
  const hex = address.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_, a, b, c, d) =>
    [Number(a) * 256 + Number(b), Number(c) * 256 + Number(d)].map((g) => g.toString(16)).join(':'),
  );
  const [head = '', tail] = hex.split('::');
  const front = head ? head.split(':') : [];
  const back = tail ? tail.split(':') : [];
  const zeros = Array<string>(8 - front.length - back.length).fill('0');
  return [...front, ...zeros, ...back].map((g) => Number.parseInt(g, 16));
}
