import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { AppDb } from '../db/database.js';
import {
  type AuditCriteria,
  type AuditEntry as AuditEntryOf,
  auditLogRepository,
} from '../db/repositories/audit-log.js';
import { auditPurgeGuardRepository } from '../db/repositories/audit-purge-guard.js';
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
  'trash',
  'restore',
  'visibility',
  'share_create',
  'share_revoke',
  'share_open',
  'download',
  'share_download',
  'user_create',
  'role_change',
  'disable',
  'enable',
  'user_delete',
  'quota_change',
  'invite_create',
  'invite_revoke',
  'outside_upload',
  'outside_replace',
  'outside_delete',
  'throttled',
  'audit_purge',
  'album_create',
  'album_rename',
  'album_delete',
  'album_share',
  'key_create',
  'key_revoke',
  's3_request',
  'guest_link_create',
  'guest_link_revoke',
  'guest_link_turn_on',
  'guest_upload',
  'guest_upload_refused',
  'guest_open',
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
export type ThrottledKind = 'login' | 'sign-up' | 'password change' | 'share link' | 'guest link';

interface CountedGroup {
  action: 'throttled' | 'share_open' | 'share_download' | 'guest_open';
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

/** An entry of the log, its action one of AUDIT_ACTIONS. */
export type AuditEntry = AuditEntryOf<AuditAction>;

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

/** Checks the filter once for the page and the CSV export, so both show the same rows. */
function criteriaOf(filter: AuditFilter): AuditCriteria {
  const criteria: AuditCriteria = {};
  const email = filter.email?.trim();
  if (email) criteria.email = email;
  if (filter.action) {
    if (!(AUDIT_ACTIONS as readonly string[]).includes(filter.action))
      throw new Invalid('Choose an action from the list.');
    criteria.action = filter.action;
  }
  if (filter.from) criteria.from = parseDay(filter.from, 'from');
  if (filter.to) criteria.before = parseDay(filter.to, 'to') + DAY_MS;
  return criteria;
}

export function createAudit({
  database,
  clock,
  leases,
}: {
  database: AppDb;
  clock: Clock;
  leases: JobLeases;
}) {
  const auditLog = auditLogRepository(database);
  const guard = auditPurgeGuardRepository(database);
  const counted = new Map<string, CountedGroup>();

  // Every column is capped: most of what lands here was typed by someone who is not signed in.
  // (Control characters, NUL included, are written out by clip, so PostgreSQL's text takes them.)
  async function record(event: AuditEvent): Promise<void> {
    await auditLog.insert({
      at: clock(),
      actor_id: clip(event.actor?.id, MAX_CHARS.target),
      actor_email: clip(event.actor?.email, MAX_CHARS.email),
      action: event.action,
      target: clip(event.target, MAX_CHARS.target),
      detail: clip(event.detail, MAX_CHARS.detail),
      ip: clip(event.ip, MAX_CHARS.ip),
    });
  }

  function countEvent(group: CountedGroup): AuditEvent {
    const targets = group.targets.length
      ? `; for ${group.targets.join(', ')}${group.hasMoreTargets ? ' and others' : ''}`
      : '';
    const what = {
      throttled: 'attempt(s) refused',
      share_open: 'opening(s)',
      share_download: 'download(s)',
      guest_open: 'visit(s)',
    }[group.action];
    return {
      action: group.action,
      actor: null,
      target: group.target,
      detail: `${group.count} ${what} between ${isoTime(group.firstAt)} and ${isoTime(group.lastAt)}${targets}`,
      ip: group.ip,
    };
  }

  /** Takes the groups whose window has closed (every group with `all`) out of the map. */
  function takeDue(all: boolean): [string, CountedGroup][] {
    const now = clock();
    const due = [...counted].filter(([, g]) => all || now >= g.firstAt + COUNT_WINDOW_MS);
    for (const [key] of due) counted.delete(key);
    return due;
  }

  /**
   * Puts groups whose rows were not written back, merged into any group opened since under the
   * same key: their counts are written with the next flush instead of being lost.
   */
  function putBack(groups: [string, CountedGroup][]): void {
    for (const [key, group] of groups) {
      const newer = counted.get(key);
      if (!newer) {
        counted.set(key, group);
        continue;
      }
      newer.count += group.count;
      newer.firstAt = Math.min(newer.firstAt, group.firstAt);
      newer.lastAt = Math.max(newer.lastAt, group.lastAt);
      for (const shown of group.targets) addTarget(newer, shown);
      newer.hasMoreTargets ||= group.hasMoreTargets;
    }
  }

  /**
   * Writes the rows of groups already taken out of the map, in one transaction. The transaction
   * only writes rows (it may run more than once on PostgreSQL); the map is left as it is once the
   * rows committed, and given the groups back if they did not.
   */
  async function writeCounts(groups: [string, CountedGroup][]): Promise<void> {
    if (groups.length === 0) return;
    const events = groups.map(([, group]) => countEvent(group));
    try {
      await database.transaction(async () => {
        for (const event of events) await record(event);
      });
    } catch (err) {
      putBack(groups);
      throw err;
    }
  }

  /** Writes the groups whose window has closed (every group with `all`); returns how many. */
  async function flushCounts(all = false): Promise<number> {
    const due = takeDue(all);
    await writeCounts(due);
    return due.length;
  }

  function addTarget(group: CountedGroup, shown: string): void {
    if (group.targets.includes(shown)) return;
    if (group.targets.length < SAMPLE_TARGETS) group.targets.push(shown);
    else group.hasMoreTargets = true;
  }

  /**
   * Counts one event in its group, opening the group (or the "many addresses" one) if needed. An
   * address is grouped as the throttles count it (an IPv6 client by its /64), and shown so. The
   * counting happens at once; a group it closes (its window over, or the map full) is written after.
   */
  async function count(
    action: CountedGroup['action'],
    target: string,
    address: string,
    sample?: string | null,
  ): Promise<void> {
    const now = clock();
    const ip = addressKey(address);
    let key = `${action}\n${target}\n${ip}`;
    const closed: [string, CountedGroup][] = [];
    let group = counted.get(key);
    if (group && now >= group.firstAt + COUNT_WINDOW_MS) {
      counted.delete(key);
      closed.push([key, group]);
      group = undefined;
    }
    if (!group && counted.size >= MAX_COUNTED_GROUPS) {
      closed.push(...takeDue(false));
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
    if (shown) addTarget(group, shown);
    await writeCounts(closed);
  }

  /**
   * One batch of the retention purge, in one transaction with its own audit row. The guard row
   * exists only inside this transaction: it is what lets the trigger allow these deletes.
   */
  function purgeBatch(retentionDays: number, cutoff: number): Promise<number> {
    return database.transaction(async () => {
      await guard.set(cutoff);
      const removed = await auditLog.deleteOldest(cutoff, PURGE_BATCH_ROWS);
      await guard.clear();
      if (removed > 0) {
        await record({
          action: 'audit_purge',
          actor: null,
          target: `${retentionDays} day retention`,
          detail: `${removed} entries older than ${isoTime(cutoff)} deleted`,
        });
      }
      return removed;
    });
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
      const removed = await purgeBatch(retentionDays, cutoff);
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
    async change(
      actor: Actor | null,
      action: AuditAction,
      about: { target?: string | null; detail?: string | null } = {},
    ): Promise<void> {
      if (!database.inTransaction())
        throw new Error(`the ${action} audit row must be written in its change's transaction`);
      await record({
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
    recordThrottled(event: { kind: ThrottledKind; ip: string; target?: string | null }): Promise<void> {
      return count('throttled', event.kind, event.ip, event.target);
    },

    /**
     * Anyone with a link can open it as often as they like: openings are counted like refusals,
     * one row per link and address per window ("N openings … from IP").
     */
    recordShareOpen(event: { linkId: string; ip: string }): Promise<void> {
      return count('share_open', event.linkId, event.ip);
    },

    /** A guest upload link's new visits, counted the same way: one row per link and address per window. */
    recordGuestOpen(event: { linkId: string; ip: string }): Promise<void> {
      return count('guest_open', event.linkId, event.ip);
    },

    /** A link's downloads are counted the same way: one row per link and address per window. */
    recordShareDownload(event: { linkId: string; ip: string }): Promise<void> {
      return count('share_download', event.linkId, event.ip);
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
            await flushCounts();
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
        await flushCounts(true);
      };
    },

    /** Newest first; after is the id of the last entry shown. */
    async page(
      filter: AuditFilter,
      after: number | null,
    ): Promise<{ entries: AuditEntry[]; nextCursor: string | null }> {
      const rows = (await auditLog.newestFirst(
        criteriaOf(filter),
        after,
        AUDIT_PAGE_SIZE + 1,
      )) as AuditEntry[];
      const entries = rows.slice(0, AUDIT_PAGE_SIZE);
      const last = entries.at(-1);
      return {
        entries,
        nextCursor: rows.length > AUDIT_PAGE_SIZE && last ? writeCursor(idCursor, last.id) : null,
      };
    },

    /**
     * Every matching entry, oldest first, in chunks: one query per chunk, so the download holds no
     * connection (and no SQLite read) for as long as it takes. The filter is checked at the call,
     * before the first chunk is read.
     */
    all(filter: AuditFilter): AsyncGenerator<AuditEntry[], void> {
      const criteria = criteriaOf(filter);
      return (async function* () {
        let after = 0;
        for (;;) {
          const rows = (await auditLog.oldestFirst(criteria, after, 1000)) as AuditEntry[];
          const last = rows.at(-1);
          if (!last) return;
          yield rows;
          after = last.id;
        }
      })();
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
