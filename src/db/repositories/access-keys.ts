import type { Selectable } from 'kysely';
import type { AppDb } from '../database.js';
import type { AccessKeysTable } from '../schema.js';

export type AccessKeyRow = Selectable<AccessKeysTable>;

/** The access_keys table's SQL. */
export function accessKeysRepository(database: AppDb) {
  return {
    async insert(row: AccessKeyRow): Promise<void> {
      await database.q.insertInto('access_keys').values(row).execute();
    },

    /** A person's keys, newest first. */
    async ofUser(userId: string): Promise<AccessKeyRow[]> {
      return database.q
        .selectFrom('access_keys')
        .selectAll()
        .where('user_id', '=', userId)
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .execute();
    },

    async countLive(userId: string): Promise<number> {
      const row = await database.q
        .selectFrom('access_keys')
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return Number(row?.n ?? 0);
    },

    /** A key with what its owner is now (role, disabled), for a request signed with it. */
    async withOwner(id: string) {
      return database.q
        .selectFrom('access_keys as k')
        .innerJoin('users as u', 'u.id', 'k.user_id')
        .selectAll('k')
        .select(['u.email', 'u.role', 'u.is_disabled'])
        .where('k.id', '=', id)
        .executeTakeFirst();
    },

    /** Marks the key revoked; false when it was already (or there is none). */
    async revoke(id: string, at: number): Promise<boolean> {
      const result = await database.q
        .updateTable('access_keys')
        .set({ revoked_at: at })
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },

    /** Records a use, at most once per `everyMs` a key: a burst of requests writes one row. */
    async touch(id: string, at: number, everyMs: number): Promise<void> {
      await database.q
        .updateTable('access_keys')
        .set({ last_used_at: at })
        .where('id', '=', id)
        .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<=', at - everyMs)]))
        .execute();
    },
  };
}
