import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.js';
import { type AppDb, connectDatabase } from '../src/db/database.js';
import { throttleEntriesRepository } from '../src/db/repositories/throttle-entries.js';
import { createServices } from '../src/services/index.js';
import { createBackoff, createRateLimit, type Throttle } from '../src/services/rate-limit.js';
import { createStorage } from '../src/storage/s3.js';
import { Client, makeTestApp, PASSWORD, signUp, type TestApp, testDialect } from './support/app.js';
import { FROM_SOURCES } from './support/process.js';

/** A failure as the app records it (charge() in rate-limit.ts): the housekeeping, then the count. */
async function fail(throttle: Throttle, key: string): Promise<void> {
  await throttle.makeRoomFor(key);
  await throttle.recordFailure(key);
}

const MINUTE = 60 * 1000;
const HOUR = 60 * MINUTE;
/** With TRUST_PROXY=true the client address is the last X-Forwarded-For entry. */
const from = (ip: string) => ({ 'X-Forwarded-For': ip });

/**
 * Another instance of the app on the test app's database: its own services (all their in-memory
 * state), throttles and routes, as a second process (or the same one after a restart) would have.
 * It shares the test app's connection unless given one: on SQLite, a second connection in this one
 * process would wait for the first's write lock while blocking the event loop the first needs.
 */
function anotherInstance(t: TestApp, database: AppDb = t.services.database) {
  if (!t.config.s3) throw new Error('test config has no storage');
  const services = createServices({
    database,
    storage: createStorage(t.config.s3),
    clock: t.now,
    config: t.config,
  });
  const app = createApp({ config: t.config, services, log: pino({ level: 'silent' }) });
  return {
    client: () =>
      new Client((input, init) => app.request(input, init), t.config.appOrigin, t.config.appOrigin),
  };
}

describe('throttles held in the database', () => {
  let t: TestApp;
  let b: ReturnType<typeof anotherInstance>;
  const connections: AppDb[] = [];
  beforeEach(async () => {
    t = await makeTestApp({ env: { TRUST_PROXY: 'true' } });
    await signUp(t.client(), 'alice@example.com');
    b = anotherInstance(t);
  });
  afterEach(async () => {
    for (const database of connections.splice(0)) await database.close();
    await t.close();
  });

  const attempt = (client: Client, ip: string, password: string) =>
    client.post('/login', { email: 'alice@example.com', password }, from(ip));
  const throttleRow = (scope: string, key: string) =>
    t.services.database.q
      .selectFrom('throttle_entries')
      .select(['count', 'last_failure_at as lastFailureAt'])
      .where('scope', '=', scope)
      .where('key', '=', key)
      .executeTakeFirst();

  it('counts failures made on one instance on the other, and after a restart', async () => {
    for (let i = 0; i < 5; i++) {
      const instance = i % 2 === 0 ? t.client() : b.client();
      expect((await attempt(instance, '198.51.100.7', 'wrong password!')).status).toBe(401);
    }
    const refused = await attempt(b.client(), '198.51.100.7', PASSWORD);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBe(15 * 60);
    expect((await attempt(t.client(), '198.51.100.7', PASSWORD)).status).toBe(429);

    // A restart: the connection closes, a new instance opens the file and still refuses. (On
    // PostgreSQL the new instance's state is its own too; the counts are only in the database.)
    let database = t.services.database;
    if (testDialect === 'sqlite') {
      await database.close();
      database = await connectDatabase({ sqliteFile: path.join(t.dataDir, 'gallery.db') });
      connections.push(database);
    }
    const restarted = anotherInstance(t, database);
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
    expect(await throttleRow('login.account', 'alice@example.com')).toEqual({
      count: 20,
      lastFailureAt: t.now(),
    });
    expect((await attempt(b.client(), '203.0.113.1', PASSWORD)).status).toBe(429);
  });
});

describe('the throttle_entries table', () => {
  const now = 1_700_000_000_000;
  const dirs: string[] = [];
  const connections: AppDb[] = [];
  afterEach(async () => {
    for (const database of connections.splice(0)) await database.close();
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  function galleryFile(): string {
    const dir = mkdtempSync(path.join(tmpdir(), 's3g-throttles-'));
    dirs.push(dir);
    return path.join(dir, 'gallery.db');
  }
  async function connect(file: string): Promise<AppDb> {
    const database = await connectDatabase({ sqliteFile: file });
    connections.push(database);
    return database;
  }
  const rows = (database: AppDb, scope: string) => throttleEntriesRepository(database).size(scope);

  it('holds at most maxKeys rows per scope under a flood of new keys from two instances, keeping the blocking counts', async () => {
    const file = galleryFile();
    const [one, two] = [await connect(file), await connect(file)].map((database) => ({
      window: createRateLimit({
        database,
        clock: () => now,
        scope: 'flood.window',
        limit: 3,
        windowMs: HOUR,
        maxKeys: 50,
      }),
      backoff: createBackoff({
        database,
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
      database: await connect(file),
      clock: () => now,
      scope: 'untouched',
      limit: 1,
      windowMs: HOUR,
    });
    await fail(other, 'someone');
    for (let i = 0; i < 3; i++) {
      await fail(one.window, 'victim');
      await fail(one.backoff, 'victim');
    }
    const observer = await connect(file);
    for (let i = 0; i < 2_000; i++) {
      const instance = i % 2 === 0 ? one : two;
      await fail(instance.window, `flood ${i}`);
      await fail(instance.backoff, `flood ${i} ${'x'.repeat(100)}`);
      expect(await rows(observer, 'flood.window')).toBeLessThanOrEqual(50);
    }
    const db = observer;
    expect(await rows(db, 'flood.window')).toBeLessThanOrEqual(50);
    expect(await rows(db, 'flood.backoff')).toBeLessThanOrEqual(50);
    // Long keys are stored hashed: no row holds the flood's 100-character tail.
    const long = await db.q
      .selectFrom('throttle_entries')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where(sql`length(key)`, '>', 64)
      .executeTakeFirstOrThrow();
    expect(Number(long.n)).toBe(0);
    expect(await two.window.retryAfterSeconds('victim')).toBeGreaterThan(0);
    expect(await two.backoff.retryAfterSeconds('victim')).toBeGreaterThan(0);
    expect(await rows(db, 'untouched')).toBe(1);
  });

  it('deletes an expired row when it is read, and the scope’s expired rows on a later failure', async () => {
    const db = await connect(galleryFile());
    let time = now;
    const limit = createRateLimit({
      database: db,
      clock: () => time,
      scope: 'expiry',
      limit: 1,
      windowMs: MINUTE,
    });
    await fail(limit, 'a');
    await fail(limit, 'b');
    expect(await rows(db, 'expiry')).toBe(2);
    time += MINUTE;
    expect(await limit.retryAfterSeconds('a')).toBe(0);
    expect(await rows(db, 'expiry')).toBe(1);
    time += HOUR;
    await fail(limit, 'c');
    const keys = await db.q
      .selectFrom('throttle_entries')
      .select('key')
      .where('scope', '=', 'expiry')
      .execute();
    expect(keys.map((r) => r.key)).toEqual(['c']);
  });

  it('loses no failure when several processes record them on one key at once', async () => {
    const file = galleryFile();
    await connect(file); // migrated before the processes start, so none of them runs the migrations
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
    const db = await connect(file);
    const counts = await db.q
      .selectFrom('throttle_entries')
      .select(['scope', 'count'])
      .where('key', '=', 'k')
      .orderBy('scope')
      .execute();
    expect(counts).toEqual([
      { scope: 'test.backoff', count: processes * failures },
      { scope: 'test.window', count: processes * failures },
    ]);
  }, 60_000);
});
