import { type Insertable, type Selectable, sql } from 'kysely';
import type { AppDb } from '../database.js';
import type { AuditLogTable } from '../schema.js';

/** One entry of the audit log, as the pages and the CSV export show it. */
export interface AuditEntry<Action extends string = string> {
  id: number;
  at: number;
  actorId: string | null;
  actorEmail: string | null;
  action: Action;
  target: string | null;
  detail: string | null;
  ip: string | null;
}

/** Which entries to list, already checked: every field optional, times in epoch ms. */
export interface AuditCriteria {
  /** the actor's email, compared without regard to case */
  email?: string;
  action?: string;
  /** entries at or after this time */
  from?: number;
  /** entries before this time */
  before?: number;
}

const toEntry = (r: Selectable<AuditLogTable>): AuditEntry => ({
  id: r.id,
  at: r.at,
  actorId: r.actor_id,
  actorEmail: r.actor_email,
  action: r.action,
  target: r.target,
  detail: r.detail,
  ip: r.ip,
});

/**
 * The audit log: append-only (triggers refuse updates, and deletes unless audit_purge_guard holds
 * a cut-off the deleted rows are older than; see audit-purge-guard.ts).
 */
export function auditLogRepository(database: AppDb) {
  /** The entries matching `criteria`, the one WHERE clause of the page and the CSV export alike. */
  function matching(criteria: AuditCriteria) {
    const { email, action, from, before } = criteria;
    return (
      database.q
        .selectFrom('audit_log')
        .selectAll()
        // NOCASE is SQLite's, and a case-insensitive collation of that name on PostgreSQL.
        .$if(email !== undefined, (qb) => qb.where(sql<boolean>`actor_email COLLATE nocase = ${email}`))
        .$if(action !== undefined, (qb) => qb.where('action', '=', action as string))
        .$if(from !== undefined, (qb) => qb.where('at', '>=', from as number))
        .$if(before !== undefined, (qb) => qb.where('at', '<', before as number))
    );
  }

  return {
    async insert(row: Insertable<AuditLogTable>): Promise<void> {
      await database.q.insertInto('audit_log').values(row).execute();
    },

    /** Newest first, the `limit` entries before id `before` (from the newest when null). */
    async newestFirst(criteria: AuditCriteria, before: number | null, limit: number): Promise<AuditEntry[]> {
      const rows = await matching(criteria)
        .$if(before !== null, (qb) => qb.where('id', '<', before as number))
        .orderBy('id', 'desc')
        .limit(limit)
        .execute();
      return rows.map(toEntry);
    },

    /** Oldest first, the `limit` entries after id `after`. */
    async oldestFirst(criteria: AuditCriteria, after: number, limit: number): Promise<AuditEntry[]> {
      const rows = await matching(criteria).where('id', '>', after).orderBy('id').limit(limit).execute();
      return rows.map(toEntry);
    },

    /**
     * Deletes up to `limit` of the oldest entries older than `cutoff`; returns how many went. Only
     * inside a transaction that set the purge guard to a cut-off at least this late.
     */
    async deleteOldest(cutoff: number, limit: number): Promise<number> {
      const result = await database.q
        .deleteFrom('audit_log')
        .where('id', 'in', (eb) =>
          eb.selectFrom('audit_log').select('id').where('at', '<', cutoff).orderBy('at').limit(limit),
        )
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
