import type { AppDb } from '../database.js';
import type { InvitesTable } from '../schema.js';

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
  };
}
