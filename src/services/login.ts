import type { Clock } from './clock.js';
import { UserError } from './errors.js';
import { createRateLimit } from './rate-limit.js';
import type { Sessions } from './sessions.js';
import type { User, Users } from './users.js';

const WINDOW_MS = 15 * 60 * 1000;

export interface LoginLimits {
  perAccount: number;
  perIp: number;
}

/** Login is throttled per account (guessing one password) and per IP (spraying many accounts). */
export function createLogin(users: Users, sessions: Sessions, clock: Clock, limits: LoginLimits) {
  const byAccount = createRateLimit({ limit: limits.perAccount, windowMs: WINDOW_MS, clock });
  const byIp = createRateLimit({ limit: limits.perIp, windowMs: WINDOW_MS, clock });

  return {
    /** Creates the account and signs it in. */
    async signUp(input: {
      email: string;
      password: string;
      inviteToken?: string;
    }): Promise<{ token: string; user: User }> {
      const user = await users.signUp(input);
      users.recordLogin(user.id);
      return { token: sessions.create(user.id).token, user };
    },

    async logIn(input: {
      email: string;
      password: string;
      ip: string;
    }): Promise<{ token: string; user: User }> {
      const accountKey = input.email.trim().toLowerCase();
      const wait = Math.max(byIp.retryAfterSeconds(input.ip), byAccount.retryAfterSeconds(accountKey));
      if (wait > 0) {
        throw new UserError(429, 'Too many failed sign-in attempts. Wait a few minutes and try again.', wait);
      }
      const user = await users.verifyCredentials(input.email, input.password);
      if (!user) {
        byIp.recordFailure(input.ip);
        byAccount.recordFailure(accountKey);
        throw new UserError(401, 'Incorrect email or password');
      }
      if (user.isDisabled) throw new UserError(403, 'This account has been disabled. Ask an administrator.');
      byAccount.reset(accountKey);
      users.recordLogin(user.id);
      // A fresh token on every login, so a token planted before login is worthless.
      const { token } = sessions.create(user.id);
      return { token, user };
    },
  };
}

export type Login = ReturnType<typeof createLogin>;
