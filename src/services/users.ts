import { z } from 'zod';
import type { Signup } from '../config.js';
import type { Db } from '../db/connection.js';
import type { AppDb } from '../db/database.js';
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

export interface UserRow {
  id: string;
  email: string;
  password_hash: string;
  role: Role;
  is_disabled: number;
  created_at: number;
  last_login_at: number | null;
  quota_bytes: number | null;
  quota_images: number | null;
}

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
  db,
  database,
  clock,
  signup,
  audit,
}: {
  db: Db;
  database: AppDb;
  clock: Clock;
  signup: Signup;
  audit: Audit;
}) {
  const byId = db.prepare('SELECT * FROM users WHERE id = ?');
  const byEmail = db.prepare('SELECT * FROM users WHERE email = ?');
  const countAll = db.prepare('SELECT count(*) AS n FROM users');
  const insert = db.prepare(
    'INSERT INTO users (id, email, password_hash, role, created_at) VALUES (?, ?, ?, ?, ?)',
  );
  const inviteByHash = db.prepare(
    'SELECT id, role FROM invites WHERE token_hash = ? AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ?',
  );
  const useInvite = db.prepare('UPDATE invites SET used_at = ?, used_by = ? WHERE id = ?');
  const setHash = db.prepare('UPDATE users SET password_hash = ? WHERE id = ?');
  const setLastLogin = db.prepare('UPDATE users SET last_login_at = ? WHERE id = ?');
  const setDisabledStmt = db.prepare('UPDATE users SET is_disabled = ? WHERE id = ?');
  const setRoleStmt = db.prepare('UPDATE users SET role = ? WHERE id = ?');
  const endSessions = db.prepare('DELETE FROM sessions WHERE user_id = ?');
  const endOtherSessions = db.prepare('DELETE FROM sessions WHERE user_id = ? AND id <> ?');

  const hasUsers = () => (countAll.get() as { n: number }).n > 0;

  /** Which role a new sign-up gets, or why it is refused. Re-checked inside the insert's transaction. */
  function roleForSignup(inviteToken: string | undefined): { role: Role; inviteId?: string } {
    if (!hasUsers()) return { role: 'admin' };
    if (inviteToken) {
      const invite = inviteByHash.get(sha256Hex(inviteToken), clock()) as
        | { id: string; role: Role }
        | undefined;
      if (!invite) throw new Forbidden('This invite link is invalid, used or expired. Ask for a new one.');
      return { role: invite.role, inviteId: invite.id };
    }
    if (signup === 'open') return { role: 'member' };
    if (signup === 'closed') throw new Forbidden('Sign-up is closed on this server.');
    throw new Forbidden('Sign-up on this server needs an invite link from an administrator.');
  }

  return {
    hasUsers,

    /** Whether this sign-up is a stranger's self-service one (SIGNUP=open, no invite, not the first). */
    isOpenSignup(inviteToken: string | undefined): boolean {
      return signup === 'open' && !inviteToken && hasUsers();
    },

    /** Throws the refusal a visitor would meet, so the sign-up page can say it before they type. */
    checkSignupAllowed(inviteToken: string | undefined): Role {
      return roleForSignup(inviteToken).role;
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
      roleForSignup(input.inviteToken);
      const passwordHash = await hashPassword(input.password);
      const id = randomToken();
      return database.transaction(async () => {
        const { role, inviteId } = roleForSignup(input.inviteToken);
        if (byEmail.get(email)) throw new Conflict('An account with this email address already exists.');
        const now = clock();
        insert.run(id, email, passwordHash, role, now);
        if (inviteId) useInvite.run(now, id, inviteId);
        const user = rowToUser(byId.get(id) as UserRow);
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
        if (byEmail.get(email)) throw new Conflict('An account with this email address already exists.');
        insert.run(id, email, passwordHash, input.role, clock());
        await audit.change(null, 'user_create', {
          target: email,
          detail: `role ${input.role}, from the command line`,
        });
        return rowToUser(byId.get(id) as UserRow);
      });
    },

    /** Returns the user only when the password is right; the caller says nothing more specific. */
    async verifyCredentials(emailInput: string, password: string): Promise<User | null> {
      const row = byEmail.get(emailInput.trim()) as UserRow | undefined;
      if (!row || password.length > PASSWORD_MAX) {
        await verifyPassword(await dummyPasswordHash(), password.slice(0, PASSWORD_MAX));
        return null;
      }
      return (await verifyPassword(row.password_hash, password)) ? rowToUser(row) : null;
    },

    recordLogin(userId: string): void {
      setLastLogin.run(clock(), userId);
    },

    /** Every other session of the user ends: a stolen session must not outlive a password change. */
    async changePassword(
      actor: Actor,
      currentPassword: string,
      newPassword: string,
      keepSessionId: string,
    ): Promise<void> {
      const userId = actor.user.id;
      const row = byId.get(userId) as UserRow | undefined;
      if (!row) throw new NotFound('No such account.');
      if (!(await verifyPassword(row.password_hash, currentPassword))) {
        throw new Invalid('Your current password is not correct.');
      }
      checkNewPassword(newPassword);
      const newHash = await hashPassword(newPassword);
      await database.transaction(async () => {
        setHash.run(newHash, userId);
        endOtherSessions.run(userId, keepSessionId);
        await audit.change(actor, 'password_change');
      });
    },

    /** For the CLI's reset: ends every session of the user. */
    async setPassword(user: User, newPassword: string): Promise<void> {
      checkNewPassword(newPassword);
      const newHash = await hashPassword(newPassword);
      await database.transaction(async () => {
        setHash.run(newHash, user.id);
        endSessions.run(user.id);
        await audit.change(null, 'password_reset', { target: user.email, detail: 'from the command line' });
      });
    },

    get(id: string): User | null {
      const row = byId.get(id) as UserRow | undefined;
      return row ? rowToUser(row) : null;
    },

    /**
     * Changes with every password change (each hash has a fresh salt). Device tokens name it, so a
     * new password retires every browser trusted under the old one.
     */
    passwordVersion(userId: string): string {
      const row = byId.get(userId) as UserRow | undefined;
      return row ? sha256Hex(row.password_hash).slice(0, 16) : '';
    },

    findByEmail(email: string): User | null {
      const row = byEmail.get(email.trim()) as UserRow | undefined;
      return row ? rowToUser(row) : null;
    },

    /** Disabling ends every session at once, not at the next request. */
    setDisabled(userId: string, isDisabled: boolean): void {
      db.transaction(() => {
        setDisabledStmt.run(isDisabled ? 1 : 0, userId);
        if (isDisabled) endSessions.run(userId);
      })();
    },

    setRole(userId: string, role: Role): void {
      setRoleStmt.run(role, userId);
    },
  };
}

export type Users = ReturnType<typeof createUsers>;
