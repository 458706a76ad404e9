import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.js';
import { type Db, openDatabase } from '../src/db/connection.js';
import { createServices } from '../src/services/index.js';
import { createBackoff, createRateLimit } from '../src/services/rate-limit.js';
import { createStorage } from '../src/storage/s3.js';
import { Client, makeTestApp, PASSWORD, signUp, type TestApp } from './support/app.js';
import { FROM_SOURCES } from './support/process.js';

const MINUTE = 60 * 1000;
const HOUR = 60 * MINUTE;
/** With TRUST_PROXY=true the client address is the last X-Forwarded-For entry. */
const from = (ip: string) => ({ 'X-Forwarded-For': ip });

/**
 * Another instance of the app on the test app's SQLite file: its own connection, services and
 * routes, as a second process (or the same one after a restart) would have.
 */
function anotherInstance(t: TestApp) {
  const db = openDatabase(path.join(t.dataDir, 'gallery.db'));
  if (!t.config.s3) throw new Error('test config has no storage');
  const services = createServices({
    db,
    storage: createStorage(t.config.s3),
    clock: t.now,
    config: t.config,
  });
  const app = createApp({ config: t.config, services, log: pino({ level: 'silent' }) });
  return {
    db,
    client: () =>
      new Client((input, init) => app.request(input, init), t.config.appOrigin, t.config.appOrigin),
  };
}

describe('throttles held in the database', () => {
  let t: TestApp;
  let b: ReturnType<typeof anotherInstance>;
  const connections: Db[] = [];
  beforeEach(async () => {
    t = await makeTestApp({ env: { TRUST_PROXY: 'true' } });
    await signUp(t.client(), 'alice@example.com');
    b = anotherInstance(t);
    connections.push(b.db);
  });
  afterEach(async () => {
    for (const db of connections.splice(0)) if (db.open) db.close();
    await t.close();
  });

  const attempt = (client: Client, ip: string, password: string) =>
    client.post('/login', { email: 'alice@example.com', password }, from(ip));
  const throttleRow = (scope: string, key: string) =>
    t.services.db
      .prepare(
        'SELECT count, last_failure_at AS lastFailureAt FROM throttle_entries WHERE scope = ? AND key = ?',
      )
      .get(scope, key);

  it('counts failures made on one instance on the other, and after a restart', async () => {
    for (let i = 0; i < 5; i++) {
      const instance = i % 2 === 0 ? t.client() : b.client();
      expect((await attempt(instance, '198.51.100.7', 'wrong password!')).status).toBe(401);
    }
    const refused = await attempt(b.client(), '198.51.100.7', PASSWORD);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBe(15 * 60);
    expect((await attempt(t.client(), '198.51.100.7', PASSWORD)).status).toBe(429);

    // A restart: both connections close, a new instance opens the file and still refuses.
    b.db.close();
    t.services.db.close();
    const restarted = anotherInstance(t);
    connections.push(restarted.db);
    expect((await attempt(restarted.client(), '198.51.100.7', PASSWORD)).status).toBe(429);
    expect((await attempt(restarted.client(), '203.0.113.9', PASSWORD)).status).toBe(303);
    t.advance(15 * MINUTE);
    expect((await attempt(restarted.client(), '198.51.100.7', PASSWORD)).status).toBe(303);
  });

  it('slows an account with growing delays once 20 failures came from both instances together', async () => {
    for (let i = 0; i < 20; i++) {
      const instance = i % 2 === 0 ? t.client() : b.client();
      expect((await attempt(instance, `198.51.100.${i}`, 'wrong password!')).status).toBe(401);
    }
    const refused = await attempt(b.client(), '203.0.113.1', PASSWORD);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect((await attempt(t.client(), '203.0.113.2', PASSWORD)).status).toBe(429);
  });

  it('counts N parallel failing logins on two instances as N, so the ones past the free 20 wait', async () => {
    const n = 30;
    const answers = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        attempt(i % 2 === 0 ? t.client() : b.client(), `198.51.100.${i}`, 'wrong password!'),
      ),
    );
    const statuses = answers.map((r) => r.status);
    expect(statuses.filter((s) => s === 401)).toHaveLength(20);
    expect(statuses.filter((s) => s === 429)).toHaveLength(n - 20);
    expect(throttleRow('login.account', 'alice@example.com')).toEqual({ count: 20, lastFailureAt: t.now() });
    expect((await attempt(b.client(), '203.0.113.1', PASSWORD)).status).toBe(429);
  });
});

describe('the throttle_entries table', () => {
  const now = 1_700_000_000_000;
  const dirs: string[] = [];
  const connections: Db[] = [];
  afterEach(() => {
    for (const db of connections.splice(0)) if (db.open) db.close();
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  function galleryFile(): string {
    const dir = mkdtempSync(path.join(tmpdir(), 's3g-throttles-'));
    dirs.push(dir);
    return path.join(dir, 'gallery.db');
  }
  function connect(file: string): Db {
    const db = openDatabase(file);
    connections.push(db);
    return db;
  }
  const rows = (db: Db, scope: string) =>
    db.prepare('SELECT count(*) FROM throttle_entries WHERE scope = ?').pluck().get(scope) as number;

  it('holds at most maxKeys rows per scope under a flood of new keys from two instances, keeping the blocking counts', () => {
    const file = galleryFile();
    const [one, two] = [connect(file), connect(file)].map((db) => ({
      window: createRateLimit({
        db,
        clock: () => now,
        scope: 'flood.window',
        limit: 3,
        windowMs: HOUR,
        maxKeys: 50,
      }),
      backoff: createBackoff({
        db,
        clock: () => now,
        scope: 'flood.backoff',
        freeFailures: 3,
        forgetOneMs: HOUR,
        firstDelayMs: 1000,
        maxDelayMs: HOUR,
        maxKeys: 50,
      }),
    }));
    if (!one || !two) throw new Error('two instances expected');
    const other = createRateLimit({
      db: connect(file),
      clock: () => now,
      scope: 'untouched',
      limit: 1,
      windowMs: HOUR,
    });
    other.recordFailure('someone');
    for (let i = 0; i < 3; i++) {
      one.window.recordFailure('victim');
      one.backoff.recordFailure('victim');
    }
    const observer = connect(file);
    for (let i = 0; i < 2_000; i++) {
      const instance = i % 2 === 0 ? one : two;
      instance.window.recordFailure(`flood ${i}`);
      instance.backoff.recordFailure(`flood ${i} ${'x'.repeat(100)}`);
      expect(rows(observer, 'flood.window')).toBeLessThanOrEqual(50);
    }
    const db = observer;
    expect(rows(db, 'flood.window')).toBeLessThanOrEqual(50);
    expect(rows(db, 'flood.backoff')).toBeLessThanOrEqual(50);
    // Long keys are stored hashed: no row holds the flood's 100-character tail.
    expect(db.prepare('SELECT count(*) FROM throttle_entries WHERE length(key) > 64').pluck().get()).toBe(0);
    expect(two.window.retryAfterSeconds('victim')).toBeGreaterThan(0);
    expect(two.backoff.retryAfterSeconds('victim')).toBeGreaterThan(0);
    expect(rows(db, 'untouched')).toBe(1);
  });

  it('deletes an expired row when it is read, and the scope’s expired rows on a later failure', () => {
    const db = connect(galleryFile());
    let time = now;
    const limit = createRateLimit({ db, clock: () => time, scope: 'expiry', limit: 1, windowMs: MINUTE });
    limit.recordFailure('a');
    limit.recordFailure('b');
    expect(rows(db, 'expiry')).toBe(2);
    time += MINUTE;
    expect(limit.retryAfterSeconds('a')).toBe(0);
    expect(rows(db, 'expiry')).toBe(1);
    time += HOUR;
    limit.recordFailure('c');
    expect(db.prepare("SELECT key FROM throttle_entries WHERE scope = 'expiry'").pluck().all()).toEqual([
      'c',
    ]);
  });

  it('loses no failure when several processes record them on one key at once', async () => {
    const file = galleryFile();
    connect(file); // migrated before the processes start, so none of them runs the migrations
    const processes = 4;
    const failures = 250;
    const run = (kind: 'window' | 'backoff') =>
      Array.from({ length: processes }, () => {
        const child = spawn(
          process.execPath,
          [
            ...FROM_SOURCES,
            'test/support/throttle-process.ts',
            file,
            kind,
            'k',
            String(failures),
            String(now),
          ],
          { stdio: ['pipe', 'pipe', 'inherit'] },
        );
        let out = '';
        const saw = (word: string) =>
          new Promise<void>((resolve, reject) => {
            const check = () => {
              if (out.includes(word)) resolve();
            };
            child.stdout.on('data', (d: Buffer) => {
              out += d.toString();
              check();
            });
            child.once('exit', (code) =>
              out.includes(word) ? resolve() : reject(new Error(`exit ${code}`)),
            );
            check();
          });
        return { child, ready: saw('ready'), done: saw('done') };
      });
    for (const kind of ['window', 'backoff'] as const) {
      const children = run(kind);
      await Promise.all(children.map((c) => c.ready));
      for (const c of children) c.child.stdin.write('go\n');
      await Promise.all(children.map((c) => c.done));
    }
    const db = connect(file);
    const counts = db
      .prepare("SELECT scope, count FROM throttle_entries WHERE key = 'k' ORDER BY scope")
      .all();
    expect(counts).toEqual([
      { scope: 'test.backoff', count: processes * failures },
      { scope: 'test.window', count: processes * failures },
    ]);
  }, 60_000);
});
