import type { Db } from '../db/connection.js';
import type { AppDb } from '../db/database.js';
import type { Actor, Audit } from './audit.js';
import type { Clock } from './clock.js';
import { Invalid, NotFound } from './errors.js';
import { randomToken, sha256Hex } from './tokens.js';
import { ROLES, type Role } from './users.js';

const INVITE_TTL_MS = 7 * 24 * 60 * 60 * 1000;

export interface Invite {
  id: string;
  role: Role;
  createdBy: string | null;
  createdByEmail: string | null;
  createdAt: number;
  expiresAt: number;
  usedAt: number | null;
  usedByEmail: string | null;
  revokedAt: number | null;
  state: 'open' | 'used' | 'revoked' | 'expired';
}

interface InviteRow {
  id: string;
  role: Role;
  created_by: string | null;
  created_by_email: string | null;
  created_at: number;
  expires_at: number;
  used_at: number | null;
  used_by_email: string | null;
  revoked_at: number | null;
}

export function parseRole(input: string | undefined): Role {
  const role = ROLES.find((r) => r === input);
  if (!role) throw new Invalid('Choose a role: admin, member or viewer.');
  return role;
}

/** Single-use sign-up links. Only the SHA-256 of the token is stored; the link is shown once. */
export function createInvites({
  db,
  database,
  clock,
  audit,
}: {
  db: Db;
  database: AppDb;
  clock: Clock;
  audit: Audit;
}) {
  const insert = db.prepare(
    'INSERT INTO invites (id, token_hash, role, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)',
  );
  const listAll = db.prepare(
    `SELECT i.*, c.email AS created_by_email, u.email AS used_by_email
       FROM invites i
       LEFT JOIN users c ON c.id = i.created_by
       LEFT JOIN users u ON u.id = i.used_by
      ORDER BY i.created_at DESC, i.id DESC LIMIT 200`,
  );
  const revokeStmt = db.prepare(
    'UPDATE invites SET revoked_at = ? WHERE id = ? AND used_at IS NULL AND revoked_at IS NULL',
  );

  return {
    async create(actor: Actor, role: Role): Promise<{ id: string; token: string }> {
      const id = randomToken();
      const token = randomToken(20);
      const now = clock();
      await database.transaction(async () => {
        insert.run(id, sha256Hex(token), role, actor.user.id, now, now + INVITE_TTL_MS);
        await audit.change(actor, 'invite_create', { detail: `role ${role}` });
      });
      return { id, token };
    },

    list(): Invite[] {
      const now = clock();
      return (listAll.all() as InviteRow[]).map((r) => ({
        id: r.id,
        role: r.role,
        createdBy: r.created_by,
        createdByEmail: r.created_by_email,
        createdAt: r.created_at,
        expiresAt: r.expires_at,
        usedAt: r.used_at,
        usedByEmail: r.used_by_email,
        revokedAt: r.revoked_at,
        state: r.used_at ? 'used' : r.revoked_at ? 'revoked' : r.expires_at <= now ? 'expired' : 'open',
      }));
    },

    async revoke(actor: Actor, id: string): Promise<void> {
      const now = clock();
      await database.transaction(async () => {
        if (revokeStmt.run(now, id).changes === 0) {
          throw new NotFound('That invite does not exist or can no longer be revoked.');
        }
        await audit.change(actor, 'invite_revoke', { target: id });
      });
    },
  };
}
