import type { Insertable, Selectable } from 'kysely';
import type { AppDb } from '../database.js';
import type { SessionsTable, UsersTable } from '../schema.js';

/** A session with the account it belongs to, as one read on every signed-in request. */
export interface SessionWithUser {
  session: Pick<
    Selectable<SessionsTable>,
    'id' | 'secret_hash' | 'expires_at' | 'refreshed_at' | 'last_seen_at' | 'ip'
  >;
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
        .select([
          's.id as session_id',
          's.secret_hash',
          's.expires_at',
          's.refreshed_at',
          's.last_seen_at',
          's.ip as session_ip',
        ])
        .selectAll('u')
        .where('s.id', '=', id)
        .executeTakeFirst();
      if (!row) return undefined;
      const { session_id, secret_hash, expires_at, refreshed_at, last_seen_at, session_ip, ...user } = row;
      return {
        session: { id: session_id, secret_hash, expires_at, refreshed_at, last_seen_at, ip: session_ip },
        user,
      };
    },

    async seen(id: string, at: number, ip: string): Promise<void> {
      await database.q.updateTable('sessions').set({ last_seen_at: at, ip }).where('id', '=', id).execute();
    },

    /** A user's sessions still in force, the most recently seen first. */
    async listOfUser(userId: string, now: number) {
      return database.q
        .selectFrom('sessions')
        .select(['id', 'created_at', 'last_seen_at', 'ip', 'user_agent'])
        .where('user_id', '=', userId)
        .where('expires_at', '>', now)
        .orderBy('last_seen_at', 'desc')
        .orderBy('id')
        .execute();
    },

    /** One session of this user; false when it is not one (any more). */
    async deleteOne(userId: string, id: string): Promise<boolean> {
      const result = await database.q
        .deleteFrom('sessions')
        .where('user_id', '=', userId)
        .where('id', '=', id)
        .executeTakeFirst();
      return Number(result.numDeletedRows) === 1;
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

    /** Every session of a user, or every one but `exceptId` (the browser that changed the password); how many. */
    async deleteOfUser(userId: string, exceptId?: string): Promise<number> {
      const result = await database.q
        .deleteFrom('sessions')
        .where('user_id', '=', userId)
        .$if(exceptId !== undefined, (qb) => qb.where('id', '<>', exceptId as string))
        .executeTakeFirst();
      return Number(result.numDeletedRows);
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
