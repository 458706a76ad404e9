import { z } from 'zod';
import type { Signup } from '../config.js';
import type { AppDb } from '../db/database.js';
import { invitesRepository } from '../db/repositories/invites.js';
import { sessionsRepository } from '../db/repositories/sessions.js';
import { type UserRow, usersRepository } from '../db/repositories/users.js';
import { EMAIL_MAX, PASSWORD_MAX, PASSWORD_MIN } from '../limits.js';
import type { Actor, Audit } from './audit.js';
import type { Clock } from './clock.js';
import { Conflict, Forbidden, Invalid, NotFound } from './errors.js';
import { dummyPasswordHash, hashPassword, verifyPassword } from './passwords.js';
import { randomToken, sha256Hex } from './tokens.js';

export const ROLES = ['admin', 'member', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

export interface User {
  id: string;
  email: string;
  role: Role;
  isDisabled: boolean;
  createdAt: number;
  lastLoginAt: number | null;
  /** null = no limit beyond MAX_UPLOAD_BYTES per file */
  quotaBytes: number | null;
  quotaImages: number | null;
}

export type { UserRow };

export function rowToUser(row: UserRow): User {
  return {
    id: row.id,
    email: row.email,
    role: row.role,
    isDisabled: row.is_disabled === 1,
    createdAt: row.created_at,
    lastLoginAt: row.last_login_at,
    quotaBytes: row.quota_bytes,
    quotaImages: row.quota_images,
  };
}

const emailSchema = z
  .string()
  .trim()
  .max(EMAIL_MAX, 'That email address is too long.')
  .pipe(z.email('Enter a valid email address.'));

function parseEmail(input: string): string {
  const result = emailSchema.safeParse(input);
  if (!result.success) throw new Invalid(result.error.issues[0]?.message ?? 'Enter a valid email address.');
  return result.data;
}

export function checkNewPassword(password: string): void {
  if (password.length < PASSWORD_MIN) {
    throw new Invalid(`Choose a password of at least ${PASSWORD_MIN} characters.`);
  }
  if (password.length > PASSWORD_MAX) {
    throw new Invalid(`Passwords can be at most ${PASSWORD_MAX} characters.`);
  }
}

export function createUsers({
  database,
  clock,
  signup,
  audit,
}: {
  database: AppDb;
  clock: Clock;
  signup: Signup;
  audit: Audit;
}) {
  const users = usersRepository(database);
  const sessions = sessionsRepository(database);
  const invites = invitesRepository(database);

  const hasUsers = () => users.exists();

  /** Which role a new sign-up gets, or why it is refused. Re-checked inside the insert's transaction. */
  async function roleForSignup(inviteToken: string | undefined): Promise<{ role: Role; inviteId?: string }> {
    if (!(await hasUsers())) return { role: 'admin' };
    if (inviteToken) {
      const invite = await invites.findUsable(sha256Hex(inviteToken), clock());
      if (!invite) throw new Forbidden('This invite link is invalid, used or expired. Ask for a new one.');
      return { role: invite.role, inviteId: invite.id };
    }
    if (signup === 'open') return { role: 'member' };
    if (signup === 'closed') throw new Forbidden('Sign-up is closed on this server.');
    throw new Forbidden('Sign-up on this server needs an invite link from an administrator.');
  }

  async function inserted(id: string): Promise<UserRow> {
    const row = await users.byId(id);
    if (!row) throw new Error(`user ${id} vanished inside its own insert's transaction`);
    return row;
  }

  return {
    hasUsers,

    /** Whether this sign-up is a stranger's self-service one (SIGNUP=open, no invite, not the first). */
    async isOpenSignup(inviteToken: string | undefined): Promise<boolean> {
      return signup === 'open' && !inviteToken && (await hasUsers());
    },

    /** Throws the refusal a visitor would meet, so the sign-up page can say it before they type. */
    async checkSignupAllowed(inviteToken: string | undefined): Promise<Role> {
      return (await roleForSignup(inviteToken)).role;
    },

    /** The new account is the actor of its own sign-up, from the visitor's address. */
    async signUp(input: {
      email: string;
      password: string;
      inviteToken?: string;
      ip: string;
    }): Promise<User> {
      const email = parseEmail(input.email);
      checkNewPassword(input.password);
      await roleForSignup(input.inviteToken);
      const passwordHash = await hashPassword(input.password);
      const id = randomToken();
      return database.transaction(async () => {
        const { role, inviteId } = await roleForSignup(input.inviteToken);
        if (await users.byEmail(email))
          throw new Conflict('An account with this email address already exists.');
        const now = clock();
        await users.insert({ id, email, password_hash: passwordHash, role, created_at: now });
        if (inviteId) await invites.markUsed(inviteId, now, id);
        const user = rowToUser(await inserted(id));
        await audit.change({ user, ip: input.ip }, 'signup', {
          target: id,
          detail: `role ${role}${input.inviteToken ? ', by invite' : ''}`,
        });
        return user;
      });
    },

    /** An account made by an operator (the CLI): no invite, any role. */
    async create(input: { email: string; password: string; role: Role }): Promise<User> {
      const email = parseEmail(input.email);
      checkNewPassword(input.password);
      const passwordHash = await hashPassword(input.password);
      const id = randomToken();
      return database.transaction(async () => {
        if (await users.byEmail(email))
          throw new Conflict('An account with this email address already exists.');
        await users.insert({ id, email, password_hash: passwordHash, role: input.role, created_at: clock() });
        await audit.change(null, 'user_create', {
          target: email,
          detail: `role ${input.role}, from the command line`,
        });
        return rowToUser(await inserted(id));
      });
    },

    /** Returns the user only when the password is right; the caller says nothing more specific. */
    async verifyCredentials(emailInput: string, password: string): Promise<User | null> {
      const row = await users.byEmail(emailInput.trim());
      if (!row || password.length > PASSWORD_MAX) {
        await verifyPassword(await dummyPasswordHash(), password.slice(0, PASSWORD_MAX));
        return null;
      }
      return (await verifyPassword(row.password_hash, password)) ? rowToUser(row) : null;
    },

    async recordLogin(userId: string): Promise<void> {
      await users.setLastLogin(userId, clock());
    },

    /** Every other session of the user ends: a stolen session must not outlive a password change. */
    async changePassword(
      actor: Actor,
      currentPassword: string,
      newPassword: string,
      keepSessionId: string,
    ): Promise<void> {
      const userId = actor.user.id;
      const row = await users.byId(userId);
      if (!row) throw new NotFound('No such account.');
      if (!(await verifyPassword(row.password_hash, currentPassword))) {
        throw new Invalid('Your current password is not correct.');
      }
      checkNewPassword(newPassword);
      const newHash = await hashPassword(newPassword);
      await database.transaction(async () => {
        await users.setPasswordHash(userId, newHash);
        await sessions.deleteOfUser(userId, keepSessionId);
        await audit.change(actor, 'password_change');
      });
    },

    /** For the CLI's reset: ends every session of the user. */
    async setPassword(user: User, newPassword: string): Promise<void> {
      checkNewPassword(newPassword);
      const newHash = await hashPassword(newPassword);
      await database.transaction(async () => {
        await users.setPasswordHash(user.id, newHash);
        await sessions.deleteOfUser(user.id);
        await audit.change(null, 'password_reset', { target: user.email, detail: 'from the command line' });
      });
    },

    async get(id: string): Promise<User | null> {
      const row = await users.byId(id);
      return row ? rowToUser(row) : null;
    },

    /**
     * Changes with every password change (each hash has a fresh salt). Device tokens name it, so a
     * new password retires every browser trusted under the old one.
     */
    async passwordVersion(userId: string): Promise<string> {
      const row = await users.byId(userId);
      return row ? sha256Hex(row.password_hash).slice(0, 16) : '';
    },

    async findByEmail(email: string): Promise<User | null> {
      const row = await users.byEmail(email.trim());
      return row ? rowToUser(row) : null;
    },

    /** Disabling ends every session at once, not at the next request. */
    async setDisabled(userId: string, isDisabled: boolean): Promise<void> {
      await database.transaction(async () => {
        await users.setDisabled(userId, isDisabled);
        if (isDisabled) await sessions.deleteOfUser(userId);
      });
    },

    async setRole(userId: string, role: Role): Promise<void> {
      await users.setRole(userId, role);
    },
  };
}

export type Users = ReturnType<typeof createUsers>;
