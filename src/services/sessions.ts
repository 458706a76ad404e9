import { constantTimeEqual } from '@oslojs/crypto/subtle';
import type { Db } from '../db/connection.js';
import type { Clock } from './clock.js';
import { randomToken, sha256Bytes } from './tokens.js';
import type { User } from './users.js';
import { rowToUser, type UserRow } from './users.js';

export const SESSION_TTL_MS = 30 * 24 * 60 * 60 * 1000;
const REFRESH_EVERY_MS = 60 * 60 * 1000;

export interface Session {
  id: string;
  userId: string;
  expiresAt: number;
}

export interface ValidSession {
  session: Session;
  user: User;
  /** true when the expiry moved: the cookie should be sent again with the new Max-Age */
  wasRefreshed: boolean;
}

/**
 * Lucia's recipe: the token is "<id>.<secret>"; the database keeps the id and SHA-256 of the
 * secret only, and the secret is compared in constant time.
 */
export function createSessions({ db, clock }: { db: Db; clock: Clock }) {
  const insert = db.prepare(
    'INSERT INTO sessions (id, secret_hash, user_id, created_at, refreshed_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)',
  );
  const select = db.prepare(
    `SELECT s.id AS session_id, s.secret_hash, s.expires_at, s.refreshed_at, u.*
       FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?`,
  );
  const remove = db.prepare('DELETE FROM sessions WHERE id = ?');
  const refresh = db.prepare('UPDATE sessions SET refreshed_at = ?, expires_at = ? WHERE id = ?');
  const removeExpired = db.prepare('DELETE FROM sessions WHERE expires_at <= ?');

  return {
    create(userId: string): { token: string; session: Session } {
      const id = randomToken();
      const secret = randomToken(20);
      const now = clock();
      const expiresAt = now + SESSION_TTL_MS;
      insert.run(id, Buffer.from(sha256Bytes(secret)), userId, now, now, expiresAt);
      return { token: `${id}.${secret}`, session: { id, userId, expiresAt } };
    },

    validate(token: string): ValidSession | null {
      const [id, secret, ...rest] = token.split('.');
      if (!id || !secret || rest.length > 0 || id.length > 64 || secret.length > 64) return null;
      const row = select.get(id) as
        | (UserRow & { session_id: string; secret_hash: Buffer; expires_at: number; refreshed_at: number })
        | undefined;
      if (!row) return null;
      if (!constantTimeEqual(sha256Bytes(secret), new Uint8Array(row.secret_hash))) return null;
      const now = clock();
      if (now >= row.expires_at || row.is_disabled) {
        remove.run(id);
        return null;
      }
      let expiresAt = row.expires_at;
      const wasRefreshed = now - row.refreshed_at >= REFRESH_EVERY_MS;
      if (wasRefreshed) {
        expiresAt = now + SESSION_TTL_MS;
        refresh.run(now, expiresAt, id);
      }
      return { session: { id, userId: row.id, expiresAt }, user: rowToUser(row), wasRefreshed };
    },

    invalidate(sessionId: string): void {
      remove.run(sessionId);
    },

    purgeExpired(): number {
      return removeExpired.run(clock()).changes;
    },
  };
}

export type Sessions = ReturnType<typeof createSessions>;
