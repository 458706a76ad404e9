import type { Insertable, Selectable } from 'kysely';
import type { AppDb } from '../database.js';
import type { SessionsTable, UsersTable } from '../schema.js';

/** A session with the account it belongs to, as one read on every signed-in request. */
export interface SessionWithUser {
  session: Pick<Selectable<SessionsTable>, 'id' | 'secret_hash' | 'expires_at' | 'refreshed_at'>;
  user: Selectable<UsersTable>;
}

/** The sessions table: one row per signed-in browser (Lucia's recipe, see services/sessions.ts). */
export function sessionsRepository(database: AppDb) {
  return {
    async insert(row: Insertable<SessionsTable>): Promise<void> {
      await database.q.insertInto('sessions').values(row).execute();
    },

    async withUser(id: string): Promise<SessionWithUser | undefined> {
      const row = await database.q
        .selectFrom('sessions as s')
        .innerJoin('users as u', 'u.id', 's.user_id')
        .select(['s.id as session_id', 's.secret_hash', 's.expires_at', 's.refreshed_at'])
        .selectAll('u')
        .where('s.id', '=', id)
        .executeTakeFirst();
      if (!row) return undefined;
      const { session_id, secret_hash, expires_at, refreshed_at, ...user } = row;
      return { session: { id: session_id, secret_hash, expires_at, refreshed_at }, user };
    },

    async refresh(id: string, at: number, expiresAt: number): Promise<void> {
      await database.q
        .updateTable('sessions')
        .set({ refreshed_at: at, expires_at: expiresAt })
        .where('id', '=', id)
        .execute();
    },

    async delete(id: string): Promise<void> {
      await database.q.deleteFrom('sessions').where('id', '=', id).execute();
    },

    /** Every session of a user, or every one but `exceptId` (the browser that changed the password). */
    async deleteOfUser(userId: string, exceptId?: string): Promise<void> {
      await database.q
        .deleteFrom('sessions')
        .where('user_id', '=', userId)
        .$if(exceptId !== undefined, (qb) => qb.where('id', '<>', exceptId as string))
        .execute();
    },

    async deleteExpired(now: number): Promise<number> {
      const result = await database.q
        .deleteFrom('sessions')
        .where('expires_at', '<=', now)
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
