import { constantTimeEqual } from '@oslojs/crypto/subtle';
import type { AppDb } from '../db/database.js';
import { sessionsRepository } from '../db/repositories/sessions.js';
import type { Clock } from './clock.js';
import { randomToken, sha256Bytes } from './tokens.js';
import type { User } from './users.js';
import { rowToUser } from './users.js';

export const SESSION_TTL_MS = 30 * 24 * 60 * 60 * 1000;
const REFRESH_EVERY_MS = 60 * 60 * 1000;
/** "Last seen" is written at most this often per session: not a write on every request. */
const SEEN_EVERY_MS = 5 * 60 * 1000;
/** A new address is written no sooner than this after the last write. */
const NEW_ADDRESS_SEEN_AFTER_MS = 60 * 1000;
/** A User-Agent is kept to this many characters (they run to a few hundred). */
const USER_AGENT_MAX = 300;
const IP_MAX = 64;

/** Where a request comes from, as the session list shows it. */
export interface Client {
  ip: string;
  userAgent?: string | undefined;
}

/** One signed-in browser, as its owner sees it on the account page. */
export interface SessionInfo {
  id: string;
  createdAt: number;
  lastSeenAt: number;
  ip: string;
  userAgent: string;
}

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
    async create(userId: string, client: Client = { ip: '' }): Promise<{ token: string; session: Session }> {
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
        last_seen_at: now,
        ip: client.ip.slice(0, IP_MAX),
        user_agent: (client.userAgent ?? '').slice(0, USER_AGENT_MAX),
      });
      return { token: `${id}.${secret}`, session: { id, userId, expiresAt } };
    },

    async validate(token: string, client?: Client): Promise<ValidSession | null> {
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
      // Best effort, and rare: every SEEN_EVERY_MS, or a minute after the address changed (clients
      // that alternate addresses, IPv4 and IPv6, relays, would otherwise write on every request).
      const ip = client ? client.ip.slice(0, IP_MAX) : session.ip;
      const sinceSeen = now - session.last_seen_at;
      if (sinceSeen >= SEEN_EVERY_MS || (ip !== session.ip && sinceSeen >= NEW_ADDRESS_SEEN_AFTER_MS)) {
        await sessions.seen(id, now, ip).catch(() => undefined); // a busy database only delays "last seen"
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

    /** The user's sessions still in force, the most recently seen first. */
    async listOf(user: User): Promise<SessionInfo[]> {
      return (await sessions.listOfUser(user.id, clock())).map((row) => ({
        id: row.id,
        createdAt: row.created_at,
        lastSeenAt: row.last_seen_at,
        ip: row.ip,
        userAgent: row.user_agent,
      }));
    },

    /** Ends one of the user's sessions; false when it is not theirs, or already ended. */
    endOne: (user: User, sessionId: string): Promise<boolean> => sessions.deleteOne(user.id, sessionId),

    /** Ends every session of the user but this one; how many. */
    endOthers: (user: User, currentId: string): Promise<number> => sessions.deleteOfUser(user.id, currentId),

    purgeExpired(): Promise<number> {
      return sessions.deleteExpired(clock());
    },
  };
}

export type Sessions = ReturnType<typeof createSessions>;
