import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { type AppDb, connectDatabase } from '../src/db/database.js';
import { LOGIN_LIMITS } from '../src/services/login.js';
import {
  addressKey,
  type BackoffLimits,
  createBackoff,
  createRateLimit,
  type Throttle,
  tryAgainIn,
} from '../src/services/rate-limit.js';
import { SHARE_GUESS_LIMITS } from '../src/services/shares.js';

/** A failure as the app records it (charge() in rate-limit.ts): the housekeeping, then the count. */
async function fail(throttle: Throttle, key: string): Promise<void> {
  await throttle.makeRoomFor(key);
  await throttle.recordFailure(key);
}

const MINUTE = 60 * 1000;

const opened: AppDb[] = [];
afterEach(async () => {
  for (const database of opened.splice(0)) await database.close();
});

/** Where a throttle keeps its counts: a fresh in-memory database. */
async function inDatabase() {
  const database = await connectDatabase({ sqliteFile: ':memory:' });
  opened.push(database);
  return { database, scope: 'test' };
}

function manualClock() {
  let now = 1_700_000_000_000;
  return {
    clock: () => now,
    advance(ms: number) {
      now += ms;
    },
  };
}

describe('fixed-window rate limit', () => {
  it('refuses after the limit until the window ends, and forgives an attempt that succeeded', async () => {
    const time = manualClock();
    const limit = createRateLimit({
      ...(await inDatabase()),
      limit: 3,
      windowMs: 15 * MINUTE,
      clock: time.clock,
    });
    for (let i = 0; i < 3; i++) {
      expect(await limit.retryAfterSeconds('k')).toBe(0);
      await fail(limit, 'k');
    }
    expect(await limit.retryAfterSeconds('k')).toBe(15 * 60);
    await limit.forgive('k');
    expect(await limit.retryAfterSeconds('k')).toBe(0);
    await fail(limit, 'k');
    time.advance(15 * MINUTE);
    expect(await limit.retryAfterSeconds('k')).toBe(0);
  });

  it('holds at most maxKeys keys, and a flood of new keys evicts other flood keys, not a blocked one', async () => {
    const time = manualClock();
    const limit = createRateLimit({
      ...(await inDatabase()),
      limit: 3,
      windowMs: 15 * MINUTE,
      clock: time.clock,
      maxKeys: 100,
    });
    for (let i = 0; i < 3; i++) await fail(limit, 'victim');
    for (let i = 0; i < 10_000; i++) await fail(limit, `flood ${i}`);
    expect(await limit.size()).toBeLessThanOrEqual(100);
    expect(await limit.retryAfterSeconds('victim')).toBeGreaterThan(0);
  });

  it('tells long keys apart while storing them hashed', async () => {
    const time = manualClock();
    const limit = createRateLimit({ ...(await inDatabase()), limit: 1, windowMs: MINUTE, clock: time.clock });
    const long = 'x'.repeat(10_000);
    await fail(limit, `${long}a`);
    expect(await limit.retryAfterSeconds(`${long}a`)).toBeGreaterThan(0);
    expect(await limit.retryAfterSeconds(`${long}b`)).toBe(0);
  });
});

describe('backoff', () => {
  const limits = { freeFailures: 5, forgetOneMs: 15 * MINUTE, firstDelayMs: 1000, maxDelayMs: 15 * MINUTE };

  it('lets the free failures through, then doubles the wait after each further one up to the cap', async () => {
    const time = manualClock();
    const backoff = createBackoff({ ...(await inDatabase()), ...limits, clock: time.clock });
    for (let i = 0; i < 5; i++) {
      expect(await backoff.retryAfterSeconds('k')).toBe(0);
      await fail(backoff, 'k');
    }
    const waits: number[] = [];
    for (let i = 0; i < 14; i++) {
      const wait = await backoff.retryAfterSeconds('k');
      waits.push(wait);
      time.advance(wait * 1000);
      expect(await backoff.retryAfterSeconds('k')).toBe(0);
      await fail(backoff, 'k');
    }
    // Failures also fade while the guesser waits, so a step may repeat before the 15-minute cap.
    expect(waits.slice(0, 10)).toEqual([1, 2, 4, 8, 16, 32, 64, 128, 256, 512]);
    expect(waits.slice(10).every((w) => w >= 512 && w <= 900)).toBe(true);
    expect(waits.at(-1)).toBe(900);
  });

  it('forgets one failure per forgetOneMs, so a guesser gets about one try per 15 minutes in the long run', async () => {
    const time = manualClock();
    const backoff = createBackoff({ ...(await inDatabase()), ...limits, clock: time.clock });
    let tries = 0;
    // A patient guesser tries whenever allowed, for a day.
    for (const end = time.clock() + 24 * 60 * MINUTE; time.clock() < end; ) {
      const wait = await backoff.retryAfterSeconds('k');
      if (wait > 0) time.advance(wait * 1000);
      else {
        await fail(backoff, 'k');
        tries++;
      }
    }
    expect(tries).toBeGreaterThan(96);
    expect(tries).toBeLessThanOrEqual(5 + 10 + 96);
    // A quiet day later every failure has faded: the free ones are back.
    time.advance(24 * 60 * MINUTE);
    for (let i = 0; i < 5; i++) {
      expect(await backoff.retryAfterSeconds('k')).toBe(0);
      await fail(backoff, 'k');
    }
    expect(await backoff.retryAfterSeconds('k')).toBe(1);
  });
});

describe('the guessing bounds the README states', () => {
  /** Tries per day of a guesser who tries whenever allowed. */
  async function triesPerDay(limits: BackoffLimits, days: number): Promise<number[]> {
    const time = manualClock();
    const backoff = createBackoff({ ...(await inDatabase()), ...limits, clock: time.clock });
    const counts: number[] = [];
    for (let day = 0; day < days; day++) {
      let tries = 0;
      for (const end = time.clock() + 24 * 60 * MINUTE; time.clock() < end; ) {
        const wait = await backoff.retryAfterSeconds('k');
        if (wait > 0) time.advance(wait * 1000);
        else {
          await fail(backoff, 'k');
          tries++;
        }
      }
      counts.push(tries);
    }
    return counts;
  }

  it('gives one account, or one link, at most 55 guesses in a first day and 24 a day after', async () => {
    for (const limits of [LOGIN_LIMITS.perAccount, LOGIN_LIMITS.perDevice, SHARE_GUESS_LIMITS.perLink]) {
      const [first, ...rest] = await triesPerDay(limits, 3);
      expect(first).toBeLessThanOrEqual(55);
      for (const day of rest) expect(day).toBeLessThanOrEqual(24);
    }
  });
});

describe('the wait a refusal names', () => {
  it('says what Retry-After says, in words', async () => {
    expect([1, 2, 59, 60, 61, 899, 900, 3599, 3600, 7200].map((seconds) => tryAgainIn(seconds))).toEqual([
      'Try again in a second.',
      'Try again in 2 seconds.',
      'Try again in 59 seconds.',
      'Try again in a minute.',
      'Try again in 2 minutes.',
      'Try again in 15 minutes.',
      'Try again in 15 minutes.',
      'Try again in an hour.',
      'Try again in an hour.',
      'Try again in 2 hours.',
    ]);
  });
});

describe('the address a throttle counts', () => {
  it('is an IPv6 client’s /64, an IPv4-mapped address’s IPv4, and anything else as it is', async () => {
    expect(addressKey('2001:db8:7:1::5')).toBe('2001:db8:7:1::/64');
    expect(addressKey('2001:0DB8:0007:0001:ffff:0:0:1')).toBe('2001:db8:7:1::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(addressKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(addressKey('192.0.2.7')).toBe('192.0.2.7');
    expect(addressKey('unknown')).toBe('unknown');
  });

  it('reads an IPv4-mapped address however it is written, and a dotted tail as two groups', async () => {
    for (const mapped of [
      '::ffff:c000:207',
      '0:0:0:0:0:FFFF:192.0.2.7',
      '0::ffff:192.0.2.7',
      '::ffff:192.0.2.7%eth0',
    ]) {
      expect(addressKey(mapped), mapped).toBe('192.0.2.7');
    }
    // Not a shared key for every such client: each is its own IPv4.
    expect(addressKey('::ffff:c000:208')).toBe('192.0.2.8');
    expect(addressKey('1::2:3:4:5:1.2.3.4')).toBe('1:0:2:3::/64');
  });

  it('gives every spelling of one IPv6 address one key', async () => {
    const group = fc.integer({ min: 0, max: 0xffff });
    const spellings = fc.record({
      groups: fc.oneof(
        fc.array(fc.oneof(group, fc.constant(0)), { minLength: 8, maxLength: 8 }),
        fc.tuple(group, group).map((v4) => [0, 0, 0, 0, 0, 0xffff, ...v4]),
      ),
      zeroPad: fc.boolean(),
      upper: fc.boolean(),
      dotted: fc.boolean(),
      zone: fc.option(fc.stringMatching(/^[a-z0-9.]{1,8}$/)),
    });
    fc.assert(
      fc.property(spellings, ({ groups, zeroPad, upper, dotted, zone }) => {
        const hex = groups.map((g) => g.toString(16).padStart(zeroPad ? 4 : 1, '0'));
        const [g7 = 0, g8 = 0] = groups.slice(6);
        const tail = dotted ? [`${g7 >> 8}.${g7 & 255}.${g8 >> 8}.${g8 & 255}`] : hex.slice(6);
        let written = [...hex.slice(0, 6), ...tail].join(':');
        if (upper) written = written.toUpperCase();
        // The URL parser writes the RFC 5952 form: lower case, the longest zero run as `::`.
        const canonical = new URL(`http://[${written}]`).hostname.slice(1, -1);
        const keys = new Set([written, canonical, `${written}%${zone ?? 'eth0'}`].map(addressKey));
        expect(keys.size).toBe(1);
        const [key = ''] = keys;
        const isMapped = groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff;
        expect(key).toBe(
          isMapped
            ? `${g7 >> 8}.${g7 & 255}.${g8 >> 8}.${g8 & 255}`
            : `${groups
                .slice(0, 4)
                .map((g) => g.toString(16))
                .join(':')}::/64`,
        );
      }),
      { numRuns: 2000 },
    );
  });
});
