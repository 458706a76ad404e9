import { constantTimeEqual } from '@oslojs/crypto/subtle';
import type { AppDb } from '../db/database.js';
import { sessionsRepository } from '../db/repositories/sessions.js';
import type { Clock } from './clock.js';
import { randomToken, sha256Bytes } from './tokens.js';
import type { User } from './users.js';
import { rowToUser } from './users.js';

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
export function createSessions({ database, clock }: { database: AppDb; clock: Clock }) {
  const sessions = sessionsRepository(database);

  return {
    async create(userId: string): Promise<{ token: string; session: Session }> {
      const id = randomToken();
      const secret = randomToken(20);
      const now = clock();
      const expiresAt = now + SESSION_TTL_MS;
      await sessions.insert({
        id,
        secret_hash: Buffer.from(sha256Bytes(secret)),
        user_id: userId,
        created_at: now,
        refreshed_at: now,
        expires_at: expiresAt,
      });
      return { token: `${id}.${secret}`, session: { id, userId, expiresAt } };
    },

    async validate(token: string): Promise<ValidSession | null> {
      const [id, secret, ...rest] = token.split('.');
      if (!id || !secret || rest.length > 0 || id.length > 64 || secret.length > 64) return null;
      const found = await sessions.withUser(id);
      if (!found) return null;
      const { session, user } = found;
      if (!constantTimeEqual(sha256Bytes(secret), new Uint8Array(session.secret_hash))) return null;
      const now = clock();
      if (now >= session.expires_at || user.is_disabled) {
        await sessions.delete(id);
        return null;
      }
      let expiresAt = session.expires_at;
      const wasRefreshed = now - session.refreshed_at >= REFRESH_EVERY_MS;
      if (wasRefreshed) {
        expiresAt = now + SESSION_TTL_MS;
        await sessions.refresh(id, now, expiresAt);
      }
      return { session: { id, userId: user.id, expiresAt }, user: rowToUser(user), wasRefreshed };
    },

    async invalidate(sessionId: string): Promise<void> {
      await sessions.delete(sessionId);
    },

    purgeExpired(): Promise<number> {
      return sessions.deleteExpired(clock());
    },
  };
}

export type Sessions = ReturnType<typeof createSessions>;
