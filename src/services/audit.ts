import type { Db } from '../db/connection.js';
import type { Clock } from './clock.js';
import { UserError } from './errors.js';

export const AUDIT_ACTIONS = [
  'signup',
  'login',
  'login_failed',
  'logout',
  'password_change',
  'password_reset',
  'upload',
  'replace',
  'rename',
  'delete',
  'visibility',
  'share_create',
  'share_revoke',
  'share_open',
  'user_create',
  'role_change',
  'disable',
  'enable',
  'user_delete',
  'quota_change',
  'invite_create',
  'invite_revoke',
  'outside_upload',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export const AUDIT_PAGE_SIZE = 100;
const DAY_MS = 24 * 60 * 60 * 1000;

export interface AuditEntry {
  id: number;
  at: number;
  actorId: string | null;
  actorEmail: string | null;
  action: AuditAction;
  target: string | null;
  detail: string | null;
  ip: string | null;
}

interface AuditRow {
  id: number;
  at: number;
  actor_id: string | null;
  actor_email: string | null;
  action: AuditAction;
  target: string | null;
  detail: string | null;
  ip: string | null;
}

const rowToEntry = (r: AuditRow): AuditEntry => ({
  id: r.id,
  at: r.at,
  actorId: r.actor_id,
  actorEmail: r.actor_email,
  action: r.action,
  target: r.target,
  detail: r.detail,
  ip: r.ip,
});

export interface AuditEvent {
  action: AuditAction;
  /** null for the system (the CLI, reconcile) or a visitor who is not signed in */
  actor: { id: string; email: string } | null;
  target?: string | null;
  detail?: string | null;
  ip?: string | null;
}

/** Filters as typed into the form: every field optional, dates as YYYY-MM-DD (UTC). */
export interface AuditFilter {
  email?: string | undefined;
  action?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
}

function parseDay(value: string, name: string): number {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  const ms = match ? Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])) : Number.NaN;
  if (!Number.isFinite(ms)) throw new UserError(400, `The “${name}” date must look like 2026-01-31.`);
  return ms;
}

/** Builds the WHERE clause once for the page and the CSV export, so both show the same rows. */
function whereClause(filter: AuditFilter): { sql: string; params: (string | number)[] } {
  const parts: string[] = [];
  const params: (string | number)[] = [];
  const email = filter.email?.trim();
  if (email) {
    parts.push('actor_email = ? COLLATE NOCASE');
    params.push(email);
  }
  if (filter.action) {
    if (!(AUDIT_ACTIONS as readonly string[]).includes(filter.action))
      throw new UserError(400, 'Choose an action from the list.');
    parts.push('action = ?');
    params.push(filter.action);
  }
  if (filter.from) {
    parts.push('at >= ?');
    params.push(parseDay(filter.from, 'from'));
  }
  if (filter.to) {
    parts.push('at < ?');
    params.push(parseDay(filter.to, 'to') + DAY_MS);
  }
  return { sql: parts.length ? parts.join(' AND ') : '1', params };
}

export function createAudit(db: Db, clock: Clock) {
  const insert = db.prepare(
    'INSERT INTO audit_log (at, actor_id, actor_email, action, target, detail, ip) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );

  return {
    record(event: AuditEvent): void {
      insert.run(
        clock(),
        event.actor?.id ?? null,
        event.actor?.email ?? null,
        event.action,
        event.target ?? null,
        event.detail?.slice(0, 1000) ?? null,
        event.ip ?? null,
      );
    },

    /** Newest first; the cursor is the id of the last entry shown. */
    page(filter: AuditFilter, cursor?: string): { entries: AuditEntry[]; nextCursor: string | null } {
      const where = whereClause(filter);
      const params = [...where.params];
      let sql = `SELECT * FROM audit_log WHERE ${where.sql}`;
      if (cursor !== undefined) {
        if (!/^\d{1,15}$/.test(cursor)) throw new UserError(400, 'That page link is not valid.');
        sql += ' AND id < ?';
        params.push(Number(cursor));
      }
      sql += ' ORDER BY id DESC LIMIT ?';
      params.push(AUDIT_PAGE_SIZE + 1);
      const rows = db.prepare(sql).all(...params) as AuditRow[];
      const entries = rows.slice(0, AUDIT_PAGE_SIZE).map(rowToEntry);
      const last = entries.at(-1);
      return { entries, nextCursor: rows.length > AUDIT_PAGE_SIZE && last ? String(last.id) : null };
    },

    /**
     * Every matching entry, oldest first, in chunks: an open iterator would keep the connection busy
     * (and refuse other requests' writes) for as long as the download takes.
     */
    *all(filter: AuditFilter): Generator<AuditEntry[]> {
      const where = whereClause(filter);
      const stmt = db.prepare(`SELECT * FROM audit_log WHERE ${where.sql} AND id > ? ORDER BY id LIMIT 1000`);
      let after = 0;
      for (;;) {
        const rows = stmt.all(...where.params, after) as AuditRow[];
        if (rows.length === 0) return;
        yield rows.map(rowToEntry);
        after = (rows.at(-1) as AuditRow).id;
      }
    },
  };
}

export type Audit = ReturnType<typeof createAudit>;

/** One CSV line; cells that a spreadsheet would run as a formula are prefixed with an apostrophe. */
export function csvLine(cells: (string | number | null)[]): string {
  return `${cells
    .map((cell) => {
      let text = cell === null ? '' : String(cell);
      if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
      return /[",\r\n']/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
    })
    .join(',')}\r\n`;
}
