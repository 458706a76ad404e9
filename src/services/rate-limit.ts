import { createHash } from 'node:crypto';
import { isIPv6 } from 'node:net';
import type { Db } from '../db/connection.js';
import type { Clock } from './clock.js';

/**
 * Failure counters per key, in the database (table throttle_entries), so every instance of the app
 * counts the same attempts and a restart forgets nothing. Every attempt is recorded *before* its
 * slow check (argon2) and forgiven when it succeeds, each in one atomic statement, so a thousand
 * parallel guesses count as a thousand, not as one.
 */
export interface Throttle {
  /** 0 when the key may try now, else how many seconds until it may. */
  retryAfterSeconds(key: string): number;
  recordFailure(key: string): void;
  /** Takes back one recorded failure: the attempt turned out right. */
  forgive(key: string): void;
  reset(key: string): void;
  /** Keys held, for tests of the row bound. */
  size(): number;
}

/** What every throttle needs: the connection, the scope naming its rows, and the time. */
export interface ThrottleDeps {
  db: Db;
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

/** A row of throttle_entries, as the read side sees it. */
interface Entry {
  /** failures counted (a fixed window) or still remembered (a backoff, fractional as they fade) */
  count: number;
  updatedAt: number;
  lastFailureAt: number;
  /** when the entry blocks nothing any more: a window's end, or when a backoff's failures have faded */
  expiresAt: number;
}

/**
 * A policy's writes are single statements (so concurrent instances never lose a count), written
 * in SQL over the row's columns and the parameters @now, @scope, @key and the policy's own.
 */
interface Policy {
  params: Record<string, number>;
  /** SQL: the failures a row holds at @now; eviction drops the rows holding fewest first. */
  countSql: string;
  /** SQL: counts one failure, an INSERT … ON CONFLICT DO UPDATE that starts over on an expired row. */
  recordSql: string;
  /** SQL: takes back one failure of a live row. */
  forgiveSql: string;
  /** the time the key may try again (<= now: allowed) */
  allowedAt(entry: Entry, now: number): number;
}

function createThrottle(policy: Policy, deps: ThrottleDeps): Throttle {
  const { db, scope, clock } = deps;
  const maxKeys = deps.maxKeys ?? DEFAULT_MAX_KEYS;
  const keyOf = (key: string) =>
    key.length <= MAX_PLAIN_KEY ? key : `#${createHash('sha256').update(key).digest('base64url')}`;

  const selectEntry = db.prepare(
    `SELECT count, updated_at AS updatedAt, last_failure_at AS lastFailureAt, expires_at AS expiresAt
       FROM throttle_entries WHERE scope = ? AND key = ?`,
  );
  // Guarded by expires_at, so a row another instance just renewed stays.
  const deleteIfExpired = db.prepare(
    'DELETE FROM throttle_entries WHERE scope = ? AND key = ? AND expires_at <= ?',
  );
  const deleteExpired = db.prepare('DELETE FROM throttle_entries WHERE scope = ? AND expires_at <= ?');
  const deleteEntry = db.prepare('DELETE FROM throttle_entries WHERE scope = ? AND key = ?');
  const countEntries = db.prepare('SELECT count(*) FROM throttle_entries WHERE scope = ?').pluck();
  const evictFewest = db.prepare(
    `DELETE FROM throttle_entries WHERE scope = @scope AND key IN (
       SELECT key FROM throttle_entries WHERE scope = @scope
        ORDER BY ${policy.countSql}, updated_at LIMIT @drop)`,
  );
  const record = db.prepare(policy.recordSql);
  const forgive = db.prepare(policy.forgiveSql);
  let nextSweepAt = Number.NEGATIVE_INFINITY;

  function live(key: string, now: number): Entry | undefined {
    const entry = selectEntry.get(scope, key) as Entry | undefined;
    if (entry && entry.expiresAt <= now) {
      deleteIfExpired.run(scope, key, now);
      return undefined;
    }
    return entry;
  }

  /**
   * Full: drop what expired, then the entries holding the fewest failures, so a flood of new keys
   * evicts other flood keys, not the counts that are actually blocking someone.
   */
  const makeRoom = db.transaction((now: number) => {
    deleteExpired.run(scope, now);
    if ((countEntries.get(scope) as number) < maxKeys) return;
    evictFewest.run({ ...policy.params, scope, now, drop: Math.max(1, Math.ceil(maxKeys / 10)) });
  });

  return {
    retryAfterSeconds(rawKey) {
      const now = clock();
      const entry = live(keyOf(rawKey), now);
      if (!entry) return 0;
      const at = policy.allowedAt(entry, now);
      return at <= now ? 0 : Math.max(1, Math.ceil((at - now) / 1000));
    },
    recordFailure(rawKey) {
      const key = keyOf(rawKey);
      const now = clock();
      if (now >= nextSweepAt) {
        nextSweepAt = now + SWEEP_INTERVAL_MS;
        deleteExpired.run(scope, now);
      }
      if (!selectEntry.get(scope, key) && (countEntries.get(scope) as number) >= maxKeys) makeRoom(now);
      record.run({ ...policy.params, scope, key, now });
    },
    forgive(rawKey) {
      forgive.run({ ...policy.params, scope, key: keyOf(rawKey), now: clock() });
    },
    reset(rawKey) {
      deleteEntry.run(scope, keyOf(rawKey));
    },
    size: () => countEntries.get(scope) as number,
  };
}

/** At most `limit` failures per window; the window starts at the first failure. */
export function createRateLimit(opts: ThrottleDeps & { limit: number; windowMs: number }): Throttle {
  return createThrottle(
    {
      params: { windowMs: opts.windowMs },
      countSql: 'count',
      recordSql: `
        INSERT INTO throttle_entries (scope, key, count, updated_at, last_failure_at, expires_at)
        VALUES (@scope, @key, 1, @now, @now, @now + @windowMs)
        ON CONFLICT (scope, key) DO UPDATE SET
          count = CASE WHEN expires_at <= @now THEN 1 ELSE count + 1 END,
          expires_at = CASE WHEN expires_at <= @now THEN excluded.expires_at ELSE expires_at END,
          updated_at = @now,
          last_failure_at = @now`,
      forgiveSql: `
        UPDATE throttle_entries SET count = max(0, count - 1), updated_at = @now
         WHERE scope = @scope AND key = @key AND expires_at > @now`,
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
  const countAt = (e: Entry, now: number) => Math.max(0, e.count - (now - e.updatedAt) / opts.forgetOneMs);
  function allowedAt(e: Entry, now: number) {
    // A failure only partly faded still counts whole, so a second's wait never frees a step.
    const excess = Math.ceil(countAt(e, now)) - opts.freeFailures;
    if (excess < 0) return now;
    return e.lastFailureAt + Math.min(opts.maxDelayMs, opts.firstDelayMs * 2 ** Math.min(excess, 40));
  }
  // The same arithmetic as countAt, in the same order, so SQL and JavaScript agree to the bit.
  const countSql = 'max(0, count - CAST(@now - updated_at AS REAL) / @forgetOneMs)';
  // Once every failure has faded, the entry blocks nothing.
  const expiresSql = (count: string) => `@now + CAST(ceil((${count}) * @forgetOneMs) AS INTEGER)`;
  return createThrottle(
    {
      params: { forgetOneMs: opts.forgetOneMs },
      countSql,
      recordSql: `
        INSERT INTO throttle_entries (scope, key, count, updated_at, last_failure_at, expires_at)
        VALUES (@scope, @key, 1, @now, @now, ${expiresSql('1')})
        ON CONFLICT (scope, key) DO UPDATE SET
          count = ${countSql} + 1,
          expires_at = ${expiresSql(`${countSql} + 1`)},
          updated_at = @now,
          last_failure_at = @now`,
      forgiveSql: `
        UPDATE throttle_entries SET
          count = max(0, ${countSql} - 1),
          expires_at = ${expiresSql(`max(0, ${countSql} - 1)`)},
          updated_at = @now
         WHERE scope = @scope AND key = @key AND expires_at > @now`,
      allowedAt,
    },
    opts,
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
