import type { Insertable } from 'kysely';
import type { AppDb } from '../database.js';
import type { InvitesTable } from '../schema.js';

/** An invite with the addresses of the admin who made it and of the account that used it. */
export interface InviteListRow {
  id: string;
  role: InvitesTable['role'];
  created_by: string | null;
  created_by_email: string | null;
  created_at: number;
  expires_at: number;
  used_at: number | null;
  used_by_email: string | null;
  revoked_at: number | null;
}

/** The invites table: one-use sign-up links an administrator made. */
export function invitesRepository(database: AppDb) {
  return {
    /** The invite a token names, if it is still usable at `now`. */
    async findUsable(tokenHash: string, now: number): Promise<Pick<InvitesTable, 'id' | 'role'> | undefined> {
      return database.q
        .selectFrom('invites')
        .select(['id', 'role'])
        .where('token_hash', '=', tokenHash)
        .where('used_at', 'is', null)
        .where('revoked_at', 'is', null)
        .where('expires_at', '>', now)
        .executeTakeFirst();
    },

    async markUsed(id: string, at: number, userId: string): Promise<void> {
      await database.q
        .updateTable('invites')
        .set({ used_at: at, used_by: userId })
        .where('id', '=', id)
        .execute();
    },

    async insert(row: Insertable<InvitesTable>): Promise<void> {
      await database.q.insertInto('invites').values(row).execute();
    },

    /** The newest `limit` invites, newest first. */
    async listNewest(limit: number): Promise<InviteListRow[]> {
      return database.q
        .selectFrom('invites as i')
        .leftJoin('users as c', 'c.id', 'i.created_by')
        .leftJoin('users as u', 'u.id', 'i.used_by')
        .select([
          'i.id',
          'i.role',
          'i.created_by',
          'c.email as created_by_email',
          'i.created_at',
          'i.expires_at',
          'i.used_at',
          'u.email as used_by_email',
          'i.revoked_at',
        ])
        .orderBy('i.created_at', 'desc')
        .orderBy('i.id', 'desc')
        .limit(limit)
        .execute();
    },

    /** Revokes an invite that is neither used nor revoked; false when there was none such. */
    async revoke(id: string, at: number): Promise<boolean> {
      const result = await database.q
        .updateTable('invites')
        .set({ revoked_at: at })
        .where('id', '=', id)
        .where('used_at', 'is', null)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },
  };
}
