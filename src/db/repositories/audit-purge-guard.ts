import type { AppDb } from '../database.js';

/**
 * The retention job's permission to delete audit entries: the one row (id 1) holds the cut-off,
 * and the audit_log trigger lets a delete through only for rows older than it. The row exists only
 * inside the purge's transaction (set, delete, clear), so no other transaction ever sees it.
 */
export function auditPurgeGuardRepository(database: AppDb) {
  return {
    async set(cutoff: number): Promise<void> {
      await database.q.insertInto('audit_purge_guard').values({ id: 1, cutoff }).execute();
    },

    async clear(): Promise<void> {
      await database.q.deleteFrom('audit_purge_guard').execute();
    },
  };
}
