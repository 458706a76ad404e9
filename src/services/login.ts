import type { AppDb } from '../db/database.js';
import { EMAIL_MAX } from '../limits.js';
import type { Actor, Audit } from './audit.js';
import type { Clock } from './clock.js';
import type { DeviceTokens } from './device-tokens.js';
import { Conflict, Unauthenticated } from './errors.js';
import {
  addressKey,
  type BackoffLimits,
  charge,
  createBackoff,
  createRateLimit,
  type Throttle,
} from './rate-limit.js';
import type { Sessions } from './sessions.js';
import { checkNewPassword, type User, type Users } from './users.js';

const MINUTE_MS = 60 * 1000;
const HOUR_MS = 60 * MINUTE_MS;

/**
 * OWASP's "slow down online guessing with device cookies". A browser that signed in to the account
 * before (a valid device token) is throttled on its own; any other client meets the per
 * (account, address) limit, the per-account backoff and the per-address spraying limit. So nobody
 * elsewhere can lock a user out of a browser they use, while all untrusted clients of one account
 * together get at most 55 guesses in a first day and 24 a day after (one an hour).
 */
export const LOGIN_LIMITS = {
  /** one untrusted address guessing one account: 5 failures, then a 15-minute wait */
  perAccountAndIp: { limit: 5, windowMs: 15 * MINUTE_MS },
  /** every untrusted client of one account together: 20 failures, then 1 s, 2 s, 4 s … 1 h apart */
  perAccount: { freeFailures: 20, forgetOneMs: HOUR_MS, firstDelayMs: 1000, maxDelayMs: HOUR_MS },
  /** one untrusted address spraying many accounts */
  perIp: { limit: 100, windowMs: 15 * MINUTE_MS },
  /** one known browser (its device token): 10 failures, then the same growing delays */
  perDevice: { freeFailures: 10, forgetOneMs: HOUR_MS, firstDelayMs: 1000, maxDelayMs: HOUR_MS },
} satisfies Record<string, { limit: number; windowMs: number } | BackoffLimits>;

export type LoginLimits = typeof LOGIN_LIMITS & {
  /** open sign-ups (SIGNUP=open, no invite) per address per hour */
  signupsPerIpPerHour: number;
};

const TOO_MANY = 'Too many failed sign-in attempts.';
const accountKey = (email: string) => email.trim().toLowerCase().slice(0, EMAIL_MAX);

export function createLogin(deps: {
  database: AppDb;
  audit: Audit;
  users: Users;
  sessions: Sessions;
  devices: DeviceTokens;
  clock: Clock;
  limits: LoginLimits;
}) {
  const { database, audit, users, sessions, devices, clock, limits } = deps;
  // Counts live in the database, so every instance of the app charges and sees the same attempts.
  const byAccountAndIp = createRateLimit({
    ...limits.perAccountAndIp,
    database,
    clock,
    scope: 'login.account_ip',
  });
  const byAccount = createBackoff({ ...limits.perAccount, database, clock, scope: 'login.account' });
  const byIp = createRateLimit({ ...limits.perIp, database, clock, scope: 'login.ip' });
  const byDevice = createBackoff({ ...limits.perDevice, database, clock, scope: 'login.device' });
  const signupsByIp = createRateLimit({
    limit: limits.signupsPerIpPerHour,
    windowMs: HOUR_MS,
    database,
    clock,
    scope: 'signup.ip',
  });
  // Changing the password needs a session, so these only slow down someone holding a stolen one.
  const passwordByAccountAndIp = createRateLimit({
    ...limits.perAccountAndIp,
    database,
    clock,
    scope: 'password.account_ip',
  });
  const passwordByAccount = createBackoff({
    ...limits.perAccount,
    database,
    clock,
    scope: 'password.account',
  });
  // A token names the password it was earned with: after a change, old cookies are untrusted clients.
  const deviceSubject = async (userId: string) => `user:${userId}:${await users.passwordVersion(userId)}`;

  /** Which counters an attempt is charged to: its known browser's alone, or the untrusted ones. */
  async function countersFor(email: string, ip: string, deviceToken: string | undefined) {
    const account = await users.findByEmail(email.slice(0, EMAIL_MAX));
    const device = account ? await devices.verify(deviceToken, await deviceSubject(account.id)) : null;
    if (device) return { device, counters: [{ throttle: byDevice, key: device }] };
    const key = accountKey(email);
    return {
      device: null,
      counters: [
        { throttle: byAccountAndIp, key: `${key}\n${ip}` },
        { throttle: byAccount, key },
        { throttle: byIp, key: ip },
      ],
    };
  }

  /** Takes back the attempt from each counter: it turned out right (or cost nothing). */
  async function forgive(counters: { throttle: Throttle; key: string }[]): Promise<void> {
    for (const c of counters) await c.throttle.forgive(c.key);
  }

  return {
    /** Creates the account and signs it in. Open sign-ups are limited per address. */
    async signUp(input: {
      email: string;
      password: string;
      inviteToken?: string;
      ip: string;
      userAgent?: string | undefined;
    }): Promise<{ token: string; user: User; deviceToken: string }> {
      const isOpen = await users.isOpenSignup(input.inviteToken);
      const counters = isOpen ? [{ throttle: signupsByIp, key: addressKey(input.ip) }] : [];
      await charge(database, counters, 'Too many accounts were created from your network.');
      try {
        const user = await users.signUp(input);
        await users.recordLogin(user.id);
        return {
          token: (await sessions.create(user.id, input)).token,
          user,
          deviceToken: await devices.issue(await deviceSubject(user.id)),
        };
      } catch (err) {
        // A typo costs nothing; an address already taken counts (it answers a question).
        if (!(err instanceof Conflict)) await forgive(counters);
        throw err;
      }
    },

    /**
     * A wrong password, an unknown email and a disabled account all look the same. Success returns
     * a new session token and a new device token for this browser.
     */
    async logIn(input: {
      email: string;
      password: string;
      ip: string;
      userAgent?: string | undefined;
      deviceToken?: string | undefined;
    }): Promise<{ token: string; user: User; deviceToken: string }> {
      const { device, counters } = await countersFor(input.email, addressKey(input.ip), input.deviceToken);
      await charge(database, counters, TOO_MANY);
      const user = await users.verifyCredentials(input.email, input.password);
      if (!user || user.isDisabled) {
        const refusal = new Unauthenticated('Incorrect email or password');
        // The typed email is kept as the target, not as an actor: it may not be anyone's.
        await audit.record({
          action: 'login_failed',
          actor: null,
          target: input.email.trim().slice(0, EMAIL_MAX),
          detail: refusal.message,
          ip: input.ip,
        });
        throw refusal;
      }
      if (device) await byDevice.reset(device);
      else {
        // The right password from this address clears its own count, not the account's: failures
        // from elsewhere still fade only with time.
        await byAccountAndIp.reset(`${accountKey(input.email)}\n${addressKey(input.ip)}`);
        await byAccount.forgive(accountKey(input.email));
        await byIp.forgive(addressKey(input.ip));
      }
      // A fresh token on every login, so a token planted before login is worthless.
      const token = await database.transaction(async () => {
        await users.recordLogin(user.id);
        await audit.change({ user, ip: input.ip }, 'login');
        return (await sessions.create(user.id, input)).token;
      });
      return { token, user, deviceToken: await devices.issue(await deviceSubject(user.id)) };
    },

    /** Ends the session the actor signed in with. */
    async logOut(actor: Actor, sessionId: string): Promise<void> {
      await database.transaction(async () => {
        await sessions.invalidate(sessionId);
        await audit.change(actor, 'logout');
      });
    },

    /** Ends another of the actor's sessions (a browser left signed in elsewhere); false when it is not theirs. */
    async endSession(actor: Actor, sessionId: string): Promise<boolean> {
      return database.transaction(async () => {
        const ended = await sessions.endOne(actor.user, sessionId);
        if (ended) await audit.change(actor, 'logout', { detail: 'ended from another session' });
        return ended;
      });
    },

    /** Ends every session of the actor but the one they use now; how many. */
    async endOtherSessions(actor: Actor, currentId: string): Promise<number> {
      return database.transaction(async () => {
        const ended = await sessions.endOthers(actor.user, currentId);
        if (ended > 0) {
          await audit.change(actor, 'logout', {
            detail: `ended ${ended} other session${ended === 1 ? '' : 's'}`,
          });
        }
        return ended;
      });
    },

    /**
     * Throttled like login, per account and address, since it checks the current password. Returns
     * a device token for this browser: the change retired the one it had.
     */
    async changePassword(input: {
      user: User;
      sessionId: string;
      currentPassword: string;
      newPassword: string;
      ip: string;
    }): Promise<{ deviceToken: string }> {
      checkNewPassword(input.newPassword);
      const counters = [
        { throttle: passwordByAccountAndIp, key: `${input.user.id}\n${addressKey(input.ip)}` },
        { throttle: passwordByAccount, key: input.user.id },
      ];
      await charge(database, counters, 'Too many wrong passwords.');
      const actor = { user: input.user, ip: input.ip };
      await users.changePassword(actor, input.currentPassword, input.newPassword, input.sessionId);
      await forgive(counters);
      return { deviceToken: await devices.issue(await deviceSubject(input.user.id)) };
    },
  };
}
