import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Db } from '../db/connection.js';
import { EMAIL_MAX } from '../limits.js';
import type { Clock } from './clock.js';
import { idCursor, writeCursor } from './cursors.js';
import { Invalid } from './errors.js';
import { JOB_LEASE_MS, type JobLeases } from './job-lease.js';
import { addressKey } from './rate-limit.js';
import type { User } from './users.js';

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
  'throttled',
  'audit_purge',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

const AUDIT_PAGE_SIZE = 100;
const DAY_MS = 24 * 60 * 60 * 1000;
/** Longest text kept per column: no email is longer than EMAIL_MAX, an IPv6 address 45 characters. */
const MAX_CHARS = { email: EMAIL_MAX, target: 254, detail: 500, ip: 64 } as const;
/**
 * Refused attempts and share-link openings, which anyone can repeat at will, are counted in
 * memory and written as one row per kind (or link) and address per window.
 */
const COUNT_WINDOW_MS = 15 * 60 * 1000;
/** Addresses counted separately per window; beyond, they share one "many addresses" row. */
const MAX_COUNTED_GROUPS = 1000;
const SAMPLE_TARGETS = 3;
/** Rows deleted per retention transaction, so a first purge of a large log never blocks for long. */
const PURGE_BATCH_ROWS = 10_000;
const SCHEDULE_INTERVAL_MS = 60_000;
const PURGE_INTERVAL_MS = 60 * 60 * 1000;
/** The retention purge's lease: one instance purges at a time (see src/services/job-lease.ts). */
export const AUDIT_PURGE_JOB = 'audit-purge';

/** What a throttled request was trying to do. */
export type ThrottledKind = 'login' | 'sign-up' | 'password change' | 'share link';

interface CountedGroup {
  action: 'throttled' | 'share_open';
  /** the throttled kind, or the link opened */
  target: string;
  ip: string;
  count: number;
  firstAt: number;
  lastAt: number;
  targets: string[];
  hasMoreTargets: boolean;
}

/**
 * Control, format and separator characters (bidi overrides, zero-width spaces…) written out as
 * "<U+202E>": an entry shows what was sent, and nothing in it can reorder or hide how it reads.
 */
const visible = (text: string) =>
  text.replace(
    /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu,
    (ch) => `<U+${(ch.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}>`,
  );
const clip = (text: string | null | undefined, max: number) =>
  text == null ? null : visible(text).slice(0, max);
const isoTime = (ms: number) => new Date(ms).toISOString();
/** Both ends of a long text: made-up emails often differ only at one of them. */
const shorten = (text: string, max: number) =>
  text.length <= max ? text : `${text.slice(0, max / 2 - 1)}…${text.slice(-max / 2)}`;

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

/** Who makes a change, and from which address: the service writes both into the change's row. */
export interface Actor {
  user: User;
  ip: string;
}

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
  if (!Number.isFinite(ms)) throw new Invalid(`The “${name}” date must look like 2026-01-31.`);
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
      throw new Invalid('Choose an action from the list.');
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

export function createAudit({ db, clock, leases }: { db: Db; clock: Clock; leases: JobLeases }) {
  const insert = db.prepare(
    'INSERT INTO audit_log (at, actor_id, actor_email, action, target, detail, ip) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  const setGuard = db.prepare('INSERT INTO audit_purge_guard (id, cutoff) VALUES (1, ?)');
  const clearGuard = db.prepare('DELETE FROM audit_purge_guard');
  const deleteOldest = db.prepare(
    'DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < ? ORDER BY at LIMIT ?)',
  );
  const counted = new Map<string, CountedGroup>();

  // Every column is capped: most of what lands here was typed by someone who is not signed in.
  function record(event: AuditEvent): void {
    insert.run(
      clock(),
      clip(event.actor?.id, MAX_CHARS.target),
      clip(event.actor?.email, MAX_CHARS.email),
      event.action,
      clip(event.target, MAX_CHARS.target),
      clip(event.detail, MAX_CHARS.detail),
      clip(event.ip, MAX_CHARS.ip),
    );
  }

  function writeCount(group: CountedGroup): void {
    const targets = group.targets.length
      ? `; for ${group.targets.join(', ')}${group.hasMoreTargets ? ' and others' : ''}`
      : '';
    const what = group.action === 'throttled' ? 'attempt(s) refused' : 'opening(s)';
    record({
      action: group.action,
      actor: null,
      target: group.target,
      detail: `${group.count} ${what} between ${isoTime(group.firstAt)} and ${isoTime(group.lastAt)}${targets}`,
      ip: group.ip,
    });
  }

  /** Writes the groups whose window has closed (every group with `all`). */
  function flushCounts(all = false): number {
    const now = clock();
    const due = [...counted].filter(([, g]) => all || now >= g.firstAt + COUNT_WINDOW_MS);
    if (due.length === 0) return 0;
    db.transaction(() => {
      for (const [key, group] of due) {
        writeCount(group);
        counted.delete(key);
      }
    })();
    return due.length;
  }

  /**
   * Counts one event in its group, opening the group (or the "many addresses" one) if needed. An
   * address is grouped as the throttles count it (an IPv6 client by its /64), and shown so.
   */
  function count(action: CountedGroup['action'], target: string, address: string, sample?: string | null) {
    const now = clock();
    const ip = addressKey(address);
    let key = `${action}\n${target}\n${ip}`;
    let group = counted.get(key);
    if (group && now >= group.firstAt + COUNT_WINDOW_MS) {
      writeCount(group);
      counted.delete(key);
      group = undefined;
    }
    if (!group && counted.size >= MAX_COUNTED_GROUPS) {
      flushCounts();
      if (counted.size >= MAX_COUNTED_GROUPS) key = `${action}\n${target}\n*`;
      group = counted.get(key);
    }
    if (!group) {
      group = {
        action,
        target,
        ip: key.endsWith('\n*') ? 'many addresses' : (clip(ip, MAX_CHARS.ip) ?? ''),
        count: 0,
        firstAt: now,
        lastAt: now,
        targets: [],
        hasMoreTargets: false,
      };
      counted.set(key, group);
    }
    group.count++;
    group.lastAt = now;
    const shown = sample && shorten(sample, 100);
    if (shown && !group.targets.includes(shown)) {
      if (group.targets.length < SAMPLE_TARGETS) group.targets.push(shown);
      else group.hasMoreTargets = true;
    }
  }

  /**
   * One batch of the retention purge, in one transaction with its own audit row. The guard row
   * exists only inside this transaction: it is what lets the trigger allow these deletes.
   */
  function purgeBatch(retentionDays: number, cutoff: number): number {
    return db
      .transaction(() => {
        setGuard.run(cutoff);
        const removed = deleteOldest.run(cutoff, PURGE_BATCH_ROWS).changes;
        clearGuard.run();
        if (removed > 0) {
          record({
            action: 'audit_purge',
            actor: null,
            target: `${retentionDays} day retention`,
            detail: `${removed} entries older than ${isoTime(cutoff)} deleted`,
          });
        }
        return removed;
      })
      .immediate();
  }

  /**
   * Deletes entries older than the retention period, a batch at a time; returns how many went.
   * isStopping ends it between batches (what is left goes in the next purge).
   */
  async function purgeExpired(
    retentionDays: number,
    isStopping: () => boolean = () => false,
  ): Promise<number> {
    const cutoff = clock() - retentionDays * DAY_MS;
    let total = 0;
    for (;;) {
      const removed = purgeBatch(retentionDays, cutoff);
      total += removed;
      if (removed < PURGE_BATCH_ROWS || isStopping()) return total;
      await nextTurn(); // let requests in between batches
    }
  }

  /**
   * The schedule's purge, unless another instance is purging now: then null (that one's purge
   * does the work). Stops between batches if its lease lapsed.
   */
  async function purgeScheduled(retentionDays: number, log: Logger): Promise<number | null> {
    const outcome = await leases.tryRun(AUDIT_PURGE_JOB, JOB_LEASE_MS, (lease) =>
      purgeExpired(retentionDays, lease.isLost),
    );
    if (!outcome.ran) {
      log.debug('audit purge skipped: another instance is purging');
      return null;
    }
    if (outcome.result > 0) log.info({ removed: outcome.result, retentionDays }, 'audit log purged');
    return outcome.result;
  }

  return {
    record,

    /**
     * The row of one change, written by the service making it inside the change's transaction, so
     * both commit or neither does. No actor: the command line or a background job made it.
     */
    change(
      actor: Actor | null,
      action: AuditAction,
      about: { target?: string | null; detail?: string | null } = {},
    ): void {
      if (!db.inTransaction)
        throw new Error(`the ${action} audit row must be written in its change's transaction`);
      record({
        action,
        actor: actor && { id: actor.user.id, email: actor.user.email },
        ip: actor?.ip ?? null,
        ...about,
      });
    },

    /**
     * A request refused by a throttle costs no row of its own: it is counted, and the count is
     * written once its window closes ("N attempts refused … from IP").
     */
    recordThrottled(event: { kind: ThrottledKind; ip: string; target?: string | null }): void {
      count('throttled', event.kind, event.ip, event.target);
    },

    /**
     * Anyone with a link can open it as often as they like: openings are counted like refusals,
     * one row per link and address per window ("N openings … from IP").
     */
    recordShareOpen(event: { linkId: string; ip: string }): void {
      count('share_open', event.linkId, event.ip);
    },

    flushCounts,

    purgeExpired,

    purgeScheduled,

    /**
     * The server's audit chores: every minute, write the counts whose window closed (this
     * process's own); with a retention period, purge at start and hourly, on one instance at a
     * time. Stopping writes the counts still open.
     */
    startSchedule(
      log: Logger,
      opts: { retentionDays: number | null; intervalMs?: number },
    ): () => Promise<void> {
      let lastPurgeAt = Number.NEGATIVE_INFINITY;
      let running: Promise<void> = Promise.resolve();
      const tick = () => {
        running = running.then(async () => {
          try {
            flushCounts();
            if (opts.retentionDays !== null && clock() - lastPurgeAt >= PURGE_INTERVAL_MS) {
              lastPurgeAt = clock();
              await purgeScheduled(opts.retentionDays, log);
            }
          } catch (err) {
            log.error({ err }, 'audit schedule failed');
          }
        });
      };
      const first = setTimeout(tick, 0);
      const timer = setInterval(tick, opts.intervalMs ?? SCHEDULE_INTERVAL_MS);
      first.unref();
      timer.unref();
      return async () => {
        clearTimeout(first);
        clearInterval(timer);
        await running;
        flushCounts(true);
      };
    },

    /** Newest first; after is the id of the last entry shown. */
    page(filter: AuditFilter, after: number | null): { entries: AuditEntry[]; nextCursor: string | null } {
      const where = whereClause(filter);
      const params = [...where.params];
      let sql = `SELECT * FROM audit_log WHERE ${where.sql}`;
      if (after !== null) {
        sql += ' AND id < ?';
        params.push(after);
      }
      sql += ' ORDER BY id DESC LIMIT ?';
      params.push(AUDIT_PAGE_SIZE + 1);
      const rows = db.prepare(sql).all(...params) as AuditRow[];
      const entries = rows.slice(0, AUDIT_PAGE_SIZE).map(rowToEntry);
      const last = entries.at(-1);
      return {
        entries,
        nextCursor: rows.length > AUDIT_PAGE_SIZE && last ? writeCursor(idCursor, last.id) : null,
      };
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
