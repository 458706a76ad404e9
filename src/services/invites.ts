import type { AppDb } from '../db/database.js';
import { invitesRepository } from '../db/repositories/invites.js';
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

export function parseRole(input: string | undefined): Role {
  const role = ROLES.find((r) => r === input);
  if (!role) throw new Invalid('Choose a role: admin, member or viewer.');
  return role;
}

/** Single-use sign-up links. Only the SHA-256 of the token is stored; the link is shown once. */
export function createInvites({ database, clock, audit }: { database: AppDb; clock: Clock; audit: Audit }) {
  const invites = invitesRepository(database);

  return {
    async create(actor: Actor, role: Role): Promise<{ id: string; token: string }> {
      const id = randomToken();
      const token = randomToken(20);
      const now = clock();
      await database.transaction(async () => {
        await invites.insert({
          id,
          token_hash: sha256Hex(token),
          role,
          created_by: actor.user.id,
          created_at: now,
          expires_at: now + INVITE_TTL_MS,
        });
        await audit.change(actor, 'invite_create', { detail: `role ${role}` });
      });
      return { id, token };
    },

    async list(): Promise<Invite[]> {
      const now = clock();
      return (await invites.listNewest(200)).map((r) => ({
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
      await database.transaction(async () => {
        if (!(await invites.revoke(id, clock()))) {
          throw new NotFound('That invite does not exist or can no longer be revoked.');
        }
        await audit.change(actor, 'invite_revoke', { target: id });
      });
    },
  };
}
