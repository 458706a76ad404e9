import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { openDatabase } from '../src/db/connection.js';
import { startServer } from '../src/server.js';
import { makeTestApp, PASSWORD, signUp, type TestApp } from './support/app.js';

const DAY = 24 * 60 * 60 * 1000;
const MINUTE = 60 * 1000;
const from = (ip: string) => ({ 'X-Forwarded-For': ip });
const silent = pino({ level: 'silent' });

/** Rows and the characters they hold, the part of the table a visitor can make grow. */
function auditSize(t: TestApp): { rows: number; chars: number } {
  return t.services.db
    .prepare(
      `SELECT count(*) AS rows, coalesce(sum(length(coalesce(actor_email, '')) + length(coalesce(target, ''))
         + length(coalesce(detail, '')) + length(coalesce(ip, ''))), 0) AS chars FROM audit_log`,
    )
    .get() as { rows: number; chars: number };
}

describe('audit log cost', () => {
  let t: TestApp;
  beforeEach(async () => {
    // A low per-address limit reaches the throttle after a few argon2 checks instead of 100.
    t = await makeTestApp({
      env: { TRUST_PROXY: 'true' },
      loginLimits: { perIp: { limit: 5, windowMs: 15 * MINUTE } },
    });
    await signUp(t.client(), 'admin@example.com');
  });
  afterEach(() => t.close());

  it('writes one row for 2,000 throttled logins with 254-character emails, with their count, when the window closes', async () => {
    const email = (i: number) => `${String(i).padStart(242, 'x')}@example.com`;
    expect(email(1)).toHaveLength(254);
    // Use up the address's budget, each failure a row of its own.
    for (let i = 0; i < 5; i++)
      await t.client().post('/login', { email: email(i), password: 'wrong password!' }, from('192.0.2.1'));
    const before = auditSize(t);

    const statuses: number[] = [];
    for (let batch = 0; batch < 20; batch++) {
      const answers = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          t
            .client()
            .post('/login', { email: email(1000 + batch * 100 + i), password: 'guess' }, from('192.0.2.1')),
        ),
      );
      statuses.push(...answers.map((r) => r.status));
    }
    expect(statuses.filter((s) => s === 429)).toHaveLength(2000);
    expect(auditSize(t).rows - before.rows).toBeLessThanOrEqual(1);

    t.advance(15 * MINUTE);
    t.services.audit.flushCounts();
    const after = auditSize(t);
    expect(after.rows - before.rows).toBe(1);
    expect(after.chars - before.chars).toBeLessThan(800);
    const row = t.services.db
      .prepare("SELECT * FROM audit_log WHERE action = 'throttled' ORDER BY id DESC LIMIT 1")
      .get() as Record<string, string | null>;
    expect(row).toMatchObject({ actor_id: null, target: 'login', ip: '192.0.2.1' });
    expect(row.detail).toMatch(
      /^2000 attempt\(s\) refused between \S+ and \S+; for x+…x+1000@example\.com, x+…x+1001@example\.com, /,
    );
    expect(row.detail).toContain('and others');
  });

  it('keeps separate counts per address and kind, and shows them in the log', async () => {
    for (let i = 0; i < 5; i++)
      await t
        .client()
        .post('/login', { email: 'a@example.com', password: 'wrong password!' }, from('192.0.2.1'));
    for (let i = 0; i < 3; i++)
      await t.client().post('/login', { email: 'a@example.com', password: PASSWORD }, from('192.0.2.1'));
    t.services.audit.recordThrottled({ kind: 'share link', ip: '192.0.2.1' });
    t.services.audit.recordThrottled({ kind: 'login', ip: '203.0.113.1', target: 'b@example.com' });
    expect(t.services.audit.flushCounts(true)).toBe(3);
    const rows = t.services.db
      .prepare("SELECT target, ip, detail FROM audit_log WHERE action = 'throttled' ORDER BY id")
      .all() as { target: string; ip: string; detail: string }[];
    expect(rows.map((r) => [r.target, r.ip, r.detail.split(' ')[0]])).toEqual([
      ['login', '192.0.2.1', '3'],
      ['share link', '192.0.2.1', '1'],
      ['login', '203.0.113.1', '1'],
    ]);
  });

  it('counts refusals of an IPv6 client as the throttle does, by its /64: one row, not one per address', async () => {
    const inMy64 = (i: number) => `2001:db8:7:1:${(i + 1).toString(16)}::${(i * 7).toString(16)}`;
    for (let i = 0; i < 5; i++)
      await t
        .client()
        .post('/login', { email: 'a@example.com', password: 'wrong password!' }, from(inMy64(i)));
    // A new address of the /64 for every attempt: the throttle sees one client...
    const statuses: number[] = [];
    for (let batch = 0; batch < 12; batch++) {
      const answers = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          t
            .client()
            .post('/login', { email: 'a@example.com', password: 'guess' }, from(inMy64(batch * 100 + i))),
        ),
      );
      statuses.push(...answers.map((r) => r.status));
    }
    expect(statuses.filter((s) => s === 429)).toHaveLength(1200);
    // ...and so does the log, which leaves room apart for everyone else.
    t.services.audit.recordThrottled({ kind: 'login', ip: '::ffff:192.0.2.9', target: 'b@example.com' });
    t.services.audit.flushCounts(true);
    const rows = t.services.db
      .prepare("SELECT ip, detail FROM audit_log WHERE action = 'throttled' ORDER BY id")
      .all() as { ip: string; detail: string }[];
    expect(rows.map((r) => [r.ip, r.detail.split(' ')[0]])).toEqual([
      ['2001:db8:7:1::/64', '1200'],
      ['192.0.2.9', '1'],
    ]);
  });

  it('caps every text it stores', () => {
    const huge = 'z'.repeat(10_000);
    t.services.audit.record({
      action: 'login_failed',
      actor: { id: huge, email: huge },
      target: huge,
      detail: huge,
      ip: huge,
    });
    const row = t.services.db
      .prepare(
        'SELECT length(actor_id) AS id, length(actor_email) AS email, length(target) AS target, length(detail) AS detail, length(ip) AS ip FROM audit_log ORDER BY id DESC LIMIT 1',
      )
      .get();
    expect(row).toEqual({ id: 254, email: 254, target: 254, detail: 500, ip: 64 });
  });

  it('keeps a forwarded address of any length to 64 characters', async () => {
    await t.client().post('/login', { email: 'a@example.com', password: 'x' }, from('1'.repeat(5000)));
    const ip = t.services.db.prepare('SELECT ip FROM audit_log ORDER BY id DESC LIMIT 1').pluck().get();
    expect(ip).toBe('1'.repeat(64));
  });
});

describe('audit log retention', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await makeTestApp();
  });
  afterEach(() => t.close());

  /** Some entries now, then `days` later some more; returns the ids of the old ones. */
  function entriesAcross(days: number): { old: number[]; recent: number[] } {
    const ids = () => t.services.db.prepare('SELECT id FROM audit_log ORDER BY id').pluck().all() as number[];
    for (let i = 0; i < 3; i++) t.services.audit.record({ action: 'login', actor: null, target: `old ${i}` });
    const old = ids();
    t.advance(days * DAY);
    for (let i = 0; i < 2; i++)
      t.services.audit.record({ action: 'login', actor: null, target: `recent ${i}` });
    return { old, recent: ids().filter((id) => !old.includes(id)) };
  }

  it('purges only entries older than the retention period, and records the purge', async () => {
    const { old, recent } = entriesAcross(31);
    const cutoff = new Date(t.now() - 30 * DAY).toISOString();
    expect(await t.services.audit.purgeExpired(30)).toBe(old.length);
    const left = t.services.db.prepare('SELECT id FROM audit_log ORDER BY id').pluck().all() as number[];
    expect(left.slice(0, recent.length)).toEqual(recent);
    const purge = t.services.db.prepare("SELECT * FROM audit_log WHERE action = 'audit_purge'").all();
    expect(purge).toEqual([
      expect.objectContaining({
        actor_id: null,
        target: '30 day retention',
        detail: `${old.length} entries older than ${cutoff} deleted`,
      }),
    ]);
    expect(await t.services.audit.purgeExpired(30)).toBe(0);
    expect(t.count('audit_log', "action = 'audit_purge'")).toBe(1);
  });

  it('purges a large backlog in batches of 10,000, each recorded', async () => {
    const insert = t.services.db.prepare(
      "INSERT INTO audit_log (at, action, target) VALUES (?, 'login', 'bulk')",
    );
    t.services.db.transaction(() => {
      for (let i = 0; i < 25_000; i++) insert.run(t.now() - 400 * DAY + i);
    })();
    expect(await t.services.audit.purgeExpired(365)).toBe(25_000);
    const details = t.services.db
      .prepare("SELECT detail FROM audit_log WHERE action = 'audit_purge' ORDER BY id")
      .pluck()
      .all() as string[];
    expect(details.map((d) => Number(d.split(' ')[0]))).toEqual([10_000, 10_000, 5_000]);
    expect(t.count('audit_log', "target = 'bulk'")).toBe(0);
  });

  it('still refuses a plain DELETE of recent and old entries alike, and any UPDATE', () => {
    const { old, recent } = entriesAcross(31);
    const db = t.services.db;
    for (const id of [old[0], recent[0]])
      expect(() => db.prepare('DELETE FROM audit_log WHERE id = ?').run(id)).toThrow(/append-only/);
    expect(() => db.prepare('DELETE FROM audit_log').run()).toThrow(/append-only/);
    expect(() => db.prepare("UPDATE audit_log SET action = 'login'").run()).toThrow(/append-only/);
    // Even inside a purge's guard, only rows older than its cut-off may go.
    db.prepare('INSERT INTO audit_purge_guard (id, cutoff) VALUES (1, ?)').run(t.now() - DAY);
    try {
      expect(() => db.prepare('DELETE FROM audit_log WHERE id = ?').run(recent[0])).toThrow(/append-only/);
    } finally {
      db.prepare('DELETE FROM audit_purge_guard').run();
    }
    expect(t.count('audit_log')).toBe(old.length + recent.length);
  });

  it('runs on a schedule, and stopping it writes the throttled counts still open', async () => {
    const { old } = entriesAcross(3);
    t.services.audit.recordThrottled({ kind: 'login', ip: '192.0.2.1', target: 'a@example.com' });
    const stop = t.services.audit.startSchedule(silent, { retentionDays: 2, intervalMs: 10 });
    await expect
      .poll(() => t.count('audit_log', "action = 'audit_purge'"), { timeout: 10_000, interval: 20 })
      .toBe(1);
    expect(t.count('audit_log', `id <= ${old.at(-1)}`)).toBe(0);
    expect(t.count('audit_log', "action = 'throttled'")).toBe(0);
    await stop();
    expect(t.count('audit_log', "action = 'throttled'")).toBe(1);
  });

  it('says on the audit page how long entries are kept', async () => {
    const admin = t.client();
    await signUp(admin, 'admin@example.com');
    expect(await (await admin.get('/admin/audit')).text()).toContain('Entries are kept for ever');
    await t.close();
    t = await makeTestApp({ env: { AUDIT_RETENTION_DAYS: '90' } });
    const again = t.client();
    await signUp(again, 'admin@example.com');
    expect(await (await again.get('/admin/audit')).text()).toContain(
      'Entries older than 90 days are deleted',
    );
  });

  it('takes AUDIT_RETENTION_DAYS as a whole number of days, at least 1', () => {
    expect(loadConfig({}).auditRetentionDays).toBeNull();
    expect(loadConfig({ AUDIT_RETENTION_DAYS: '365' }).auditRetentionDays).toBe(365);
    for (const bad of ['0', '-3', '1.5', 'forever'])
      expect(() => loadConfig({ AUDIT_RETENTION_DAYS: bad })).toThrow(/AUDIT_RETENTION_DAYS/);
  });
});

describe('the server', () => {
  it('purges the audit log at start-up when AUDIT_RETENTION_DAYS is set', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 's3g-retention-'));
    const file = path.join(dataDir, 'gallery.db');
    const seed = openDatabase(file);
    const insert = seed.prepare("INSERT INTO audit_log (at, action, target) VALUES (?, 'login', ?)");
    insert.run(Date.now() - 10 * DAY, 'ten days ago');
    insert.run(Date.now() - DAY / 2, 'this morning');
    seed.close();
    const running = await startServer(
      loadConfig({ DATA_DIR: dataDir, PORT: '0', LOG_LEVEL: 'silent', AUDIT_RETENTION_DAYS: '7' }),
    );
    const watch = openDatabase(file);
    try {
      const targets = () => watch.prepare('SELECT target FROM audit_log ORDER BY id').pluck().all();
      await expect
        .poll(targets, { timeout: 10_000, interval: 50 })
        .toEqual(['this morning', '7 day retention']);
    } finally {
      watch.close();
      await running.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
