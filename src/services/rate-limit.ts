import { createHash } from 'node:crypto';
import { isIPv6 } from 'node:net';
import type { AppDb } from '../db/database.js';
import {
  type ThrottleCounting,
  type ThrottleEntry,
  throttleEntriesRepository,
} from '../db/repositories/throttle-entries.js';
import type { Clock } from './clock.js';
import { Throttled } from './errors.js';

/**
 * Failure counters per key, in the database (table throttle_entries), so every instance of the app
 * counts the same attempts and a restart forgets nothing. Every attempt is recorded *before* its
 * slow check (argon2) and forgiven when it succeeds, each in one atomic statement, so a thousand
 * parallel guesses count as a thousand, not as one. charge() checks and records in one database
 * transaction, so parallel attempts cannot all pass the check.
 */
export interface Throttle {
  /** 0 when the key may try now, else how many seconds until it may. */
  retryAfterSeconds(key: string): Promise<number>;
  /**
   * The housekeeping before a failure is recorded: the scope's expired rows go once a minute, and
   * when the key is new and the scope holds maxKeys rows, the least blocking tenth goes. It reads
   * the whole scope, so it runs in transactions of its own, never inside the caller's: there every
   * attempt would conflict with every other on PostgreSQL. maxKeys is therefore a bound parallel
   * attempts may pass by as many rows as there are attempts in flight.
   */
  makeRoomFor(key: string): Promise<void>;
  /** Counts one failure of the key (one statement; call makeRoomFor first). */
  recordFailure(key: string): Promise<void>;
  /** The name charge() locks while it checks and counts the key: one per scope and key. */
  lockName(key: string): string;
  /** Takes back one recorded failure: the attempt turned out right. */
  forgive(key: string): Promise<void>;
  reset(key: string): Promise<void>;
  /** Keys held, for tests of the row bound. */
  size(): Promise<number>;
}

/** What every throttle needs: the database, the scope naming its rows, and the time. */
export interface ThrottleDeps {
  database: AppDb;
  /** Tells this throttle's keys from every other's, e.g. 'login.account'. */
  scope: string;
  clock: Clock;
  /** Rows this scope may hold. */
  maxKeys?: number;
}

const DEFAULT_MAX_KEYS = 20_000;
/** Keys longer than this are hashed, so a flood of long keys costs no more space than short ones. */
const MAX_PLAIN_KEY = 64;
/** How often a throttle deletes its scope's expired rows (on its next recorded failure). */
const SWEEP_INTERVAL_MS = 60_000;

/** A policy: how its rows count (the SQL, in the repository) and when a row lets its key try again. */
interface Policy {
  counting: ThrottleCounting;
  /** the time the key may try again (<= now: allowed) */
  allowedAt(entry: ThrottleEntry, now: number): number;
}

function createThrottle(policy: Policy, deps: ThrottleDeps): Throttle {
  const { database, scope, clock } = deps;
  const entries = throttleEntriesRepository(database);
  const maxKeys = deps.maxKeys ?? DEFAULT_MAX_KEYS;
  const keyOf = (key: string) =>
    key.length <= MAX_PLAIN_KEY ? key : `#${createHash('sha256').update(key).digest('base64url')}`;
  let nextSweepAt = Number.NEGATIVE_INFINITY;

  async function live(key: string, now: number): Promise<ThrottleEntry | undefined> {
    const entry = await entries.get(scope, key);
    if (entry && entry.expiresAt <= now) {
      await entries.deleteIfExpired(scope, key, now);
      return undefined;
    }
    return entry;
  }

  /**
   * Full: drop what expired, then the entries holding the fewest failures, so a flood of new keys
   * evicts other flood keys, not the counts that are actually blocking someone. One transaction:
   * two instances making room at once count and evict one after the other (BEGIN IMMEDIATE on
   * SQLite, SERIALIZABLE on PostgreSQL), so they do not both evict a tenth.
   */
  function makeRoom(now: number): Promise<void> {
    return database.transaction(async () => {
      await entries.deleteExpired(scope, now);
      if ((await entries.size(scope)) < maxKeys) return;
      await entries.evictFewest(scope, policy.counting, now, Math.max(1, Math.ceil(maxKeys / 10)));
    });
  }

  return {
    async retryAfterSeconds(rawKey) {
      const now = clock();
      const entry = await live(keyOf(rawKey), now);
      if (!entry) return 0;
      const at = policy.allowedAt(entry, now);
      return at <= now ? 0 : Math.max(1, Math.ceil((at - now) / 1000));
    },
    async makeRoomFor(rawKey) {
      const key = keyOf(rawKey);
      const now = clock();
      if (now >= nextSweepAt) {
        nextSweepAt = now + SWEEP_INTERVAL_MS;
        await entries.deleteExpired(scope, now);
      }
      if (!(await entries.get(scope, key)) && (await entries.size(scope)) >= maxKeys) await makeRoom(now);
    },
    async recordFailure(rawKey) {
      await entries.recordFailure(scope, keyOf(rawKey), policy.counting, clock());
    },
    lockName: (rawKey) => `throttle ${scope} ${keyOf(rawKey)}`,
    async forgive(rawKey) {
      await entries.forgive(scope, keyOf(rawKey), policy.counting, clock());
    },
    async reset(rawKey) {
      await entries.delete(scope, keyOf(rawKey));
    },
    size: () => entries.size(scope),
  };
}

/**
 * Throws Throttled (with `refusal` and the wait) when any counter says wait; otherwise charges the
 * attempt to each of them, before the caller's slow check, which forgives it when it turns out
 * right. The check and the charge are one transaction, so of parallel attempts on any instance no
 * more pass than the counters allow.
 */
export async function charge(
  database: AppDb,
  counters: { throttle: Throttle; key: string }[],
  refusal: string,
): Promise<void> {
  if (counters.length === 0) return;
  // Refused already? Then without waiting for the locks, which a flood on one key would queue for.
  await refuseIfWaiting(counters, refusal);
  for (const c of counters) await c.throttle.makeRoomFor(c.key);
  // Locked per counter, not serializable: attempts on different keys never abort one another.
  const names = counters.map((c) => c.throttle.lockName(c.key));
  await database.lockedTransaction(names, async () => {
    await refuseIfWaiting(counters, refusal);
    for (const c of counters) await c.throttle.recordFailure(c.key);
  });
}

async function refuseIfWaiting(counters: { throttle: Throttle; key: string }[], refusal: string) {
  let wait = 0;
  for (const c of counters) wait = Math.max(wait, await c.throttle.retryAfterSeconds(c.key));
  if (wait > 0) throw new Throttled(`${refusal} ${tryAgainIn(wait)}`, wait);
}

/** At most `limit` failures per window; the window starts at the first failure. */
export function createRateLimit(opts: ThrottleDeps & { limit: number; windowMs: number }): Throttle {
  return createThrottle(
    {
      counting: { kind: 'window', windowMs: opts.windowMs },
      allowedAt: (e, now) => (e.count < opts.limit ? now : e.expiresAt),
    },
    opts,
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
export function createBackoff(opts: ThrottleDeps & BackoffLimits): Throttle {
  // The same arithmetic, in the same order, as the repository's SQL, so the two agree to the bit.
  const countAt = (e: ThrottleEntry, now: number) =>
    Math.max(0, e.count - (now - e.updatedAt) / opts.forgetOneMs);
  function allowedAt(e: ThrottleEntry, now: number) {
    // A failure only partly faded still counts whole, so a second's wait never frees a step.
    const excess = Math.ceil(countAt(e, now)) - opts.freeFailures;
    if (excess < 0) return now;
    return e.lastFailureAt + Math.min(opts.maxDelayMs, opts.firstDelayMs * 2 ** Math.min(excess, 40));
  }
  return createThrottle({ counting: { kind: 'backoff', forgetOneMs: opts.forgetOneMs }, allowedAt }, opts);
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
