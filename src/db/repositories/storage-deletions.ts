import type { AppDb } from '../database.js';

/** The storage_deletions table's SQL: bucket keys to delete, kept until a delete succeeds. */
export function storageDeletionsRepository(database: AppDb) {
  return {
    /** Queues the keys (one statement; a key already queued stays as it was). */
    async queue(keys: readonly string[], queuedAt: number): Promise<void> {
      for (let i = 0; i < keys.length; i += 1000) {
        await database.q
          .insertInto('storage_deletions')
          .values([...new Set(keys.slice(i, i + 1000))].map((key) => ({ key, queued_at: queuedAt })))
          .onConflict((oc) => oc.column('key').doNothing())
          .execute();
      }
    },

    /** The key is gone from the bucket. */
    async dequeue(key: string): Promise<void> {
      await database.q.deleteFrom('storage_deletions').where('key', '=', key).execute();
    },

    async recordFailure(key: string, error: string): Promise<void> {
      await database.q
        .updateTable('storage_deletions')
        .set((eb) => ({ attempts: eb('attempts', '+', 1), last_error: error }))
        .where('key', '=', key)
        .execute();
    },

    /** Queued keys, the oldest first. */
    async list(limit: number): Promise<string[]> {
      const rows = await database.q
        .selectFrom('storage_deletions')
        .select('key')
        .orderBy('queued_at')
        .limit(limit)
        .execute();
      return rows.map((r) => r.key);
    },

    async has(key: string): Promise<boolean> {
      const row = await database.q
        .selectFrom('storage_deletions')
        .select('key')
        .where('key', '=', key)
        .executeTakeFirst();
      return row !== undefined;
    },
  };
}
