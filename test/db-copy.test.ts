import type { Kysely } from 'kysely';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.js';
import { COPY_ORDER } from '../src/db/copy.js';
import { connectDatabase, openKysely } from '../src/db/database.js';
import { postgresMigrations } from '../src/db/migrations-postgres.js';
import { type Database, IMAGE_COLUMNS } from '../src/db/schema.js';
import { createServices } from '../src/services/index.js';
import { type Client, makeTestApp, PASSWORD, signUp, signUpWithRole, type TestApp } from './support/app.js';
import { attrs, text } from './support/html.js';
import { makeJpeg, makePng } from './support/images.js';
import { type FreshPostgres, freshPostgres, postgresIsReachable } from './support/postgres.js';
import { cli } from './support/process.js';
import { upload } from './support/uploads.js';

// Without a server this file skips; under CI this throws, failing the file.
const hasPostgres = await postgresIsReachable();

/** Each table's primary key, to put both sides' rows in one order. */
const KEYS: Record<(typeof COPY_ORDER)[number], string[]> = {
  users: ['id'],
  sessions: ['id'],
  invites: ['id'],
  images: ['id'],
  pending_uploads: ['key'],
  storage_deletions: ['key'],
  albums: ['id'],
  album_images: ['album_id', 'image_id'],
  share_links: ['id'],
  share_link_images: ['link_id', 'image_id'],
  changes: ['id'],
  outbox: ['id'],
  audit_log: ['id'],
  app_secrets: ['name'],
  audit_purge_guard: ['id'],
  throttle_entries: ['scope', 'key'],
  job_leases: ['name'],
  jobs: ['id'],
  access_keys: ['id'],
  guest_links: ['id'],
};

async function rowsOf(db: Kysely<Database>, table: (typeof COPY_ORDER)[number]) {
  // images: the columns both databases have (PostgreSQL's search_words is its search index).
  const query =
    table === 'images' ? db.selectFrom('images').select(IMAGE_COLUMNS) : db.selectFrom(table).selectAll();
  const rows = (await query.execute()) as Record<string, unknown>[];
  const order = (a: Record<string, unknown>, b: Record<string, unknown>) => {
    for (const k of KEYS[table]) {
      const [x, y] = [a[k], b[k]];
      if (typeof x === 'number' && typeof y === 'number' && x !== y) return x - y;
      if (String(x) !== String(y)) return String(x) < String(y) ? -1 : 1;
    }
    return 0;
  };
  return rows.sort(order);
}

describe.skipIf(!hasPostgres)('db:copy --to postgres://…', () => {
  let t: TestApp;
  let pg: FreshPostgres;
  let env: Record<string, string>;
  /** The target with a password in it (the test server trusts, so it is never checked): it must never be printed. */
  let target: string;
  const PASSWORD_IN_URL = 'pg-s3cr3t-pw';
  let admin: Client;
  let mia: Client;
  let photo: string;

  beforeAll(async () => {
    t = await makeTestApp({
      // Uploads leave their renditions jobs waiting, so the jobs table has rows to copy too.
      workers: false,
      // Every change queues a webhook delivery in the outbox; nothing sends it in this test.
      env: { WEBHOOK_URL: 'http://127.0.0.1:9/hook', WEBHOOK_SECRET: 'a-webhook-secret-of-length' },
    });
    pg = await freshPostgres();
    const url = new URL(pg.url);
    url.username = url.username || 'postgres';
    url.password = PASSWORD_IN_URL;
    target = url.toString();
    env = { DATA_DIR: t.dataDir, APP_ORIGIN: t.config.appOrigin };

    admin = t.client();
    await signUp(admin, 'admin@example.com');
    mia = await signUpWithRole(t, admin, 'mia@example.com', 'member');
    await admin.post('/admin/invites', { role: 'viewer' }); // an invite nobody used
    photo = await upload(admin, await makeJpeg(), 'beach.jpg');
    await upload(admin, await makePng(), 'chart.png', 'image/png');
    await upload(mia, await makeJpeg(), 'mia.jpg');
    expect((await admin.post(`/images/${photo}/rename`, { title: 'Beach at dusk' })).status).toBe(303);
    expect((await admin.post(`/images/${photo}/shares`, { expiry: '1d' })).status).toBe(303);
    // An album with its image, and a link showing it (share_links now points at albums).
    const albumMade = await admin.post('/albums', { name: 'Holidays', ids: photo });
    expect(albumMade.status).toBe(303);
    expect(
      (await admin.post(`${albumMade.headers.get('location')?.split('?')[0]}/shares`, { expiry: '1d' }))
        .status,
    ).toBe(303);
    // A guest upload link, filling the album.
    const albumId = albumMade.headers.get('location')?.split('?')[0]?.split('/').pop() ?? '';
    expect(
      (
        await admin.post('/guest-links', {
          label: 'Guests',
          expiry: '1d',
          password: 'open sesame',
          album: albumId,
        })
      ).status,
    ).toBe(303);
    // A personal S3 key (its secret sealed with DATA_DIR's key file, which the copy leaves alone).
    expect((await mia.post('/account/keys', { name: 'laptop', scope: 'own' })).status).toBe(303);
    // Failed logins leave throttle rows and audit rows.
    const stranger = t.client();
    for (let i = 0; i < 3; i++)
      expect(
        (await stranger.post('/login', { email: 'admin@example.com', password: 'wrong password!' })).status,
      ).toBe(401);
    for (const table of COPY_ORDER.filter((n) => n !== 'audit_purge_guard' && n !== 'job_leases'))
      if (!['storage_deletions', 'app_secrets'].includes(table))
        expect(await t.count(table), `${table} has rows to copy`).toBeGreaterThan(0);
  }, 60_000);

  afterAll(async () => {
    await t?.close();
    await pg?.drop();
  });

  it('copies every row of every table, continues the ids after them, and keeps the audit log append-only', async () => {
    const made = await cli(['db:copy', '--to', target], env);
    expect(made.code, made.err).toBe(0);
    expect(made.out).toContain('Row counts match in every table.');
    expect(`${made.out}${made.err}`).not.toContain(PASSWORD_IN_URL);
    expect(made.out).toContain('***');

    const from = openKysely({ sqlite: sqliteOf(t) });
    const to = openKysely({ url: pg.url });
    try {
      for (const table of COPY_ORDER) {
        const n = await t.count(table);
        expect(made.out, table).toMatch(new RegExp(`^${table}\\s+${n}\\s+${n}$`, 'm'));
        const source = await rowsOf(from, table);
        const copied = await rowsOf(to, table);
        expect(copied.length, table).toBe(n);
        expect(copied, table).toEqual(source);
      }
      const { version } = (await to
        .selectFrom('schema_version' as never)
        .select('version' as never)
        .executeTakeFirstOrThrow()) as { version: number };
      expect(version).toBe(postgresMigrations.length);

      // New rows get ids after the copied ones, not the sequence's 1.
      for (const table of ['changes', 'audit_log', 'outbox'] as const) {
        const max = sqliteOf(t).prepare(`SELECT max(id) FROM ${table}`).pluck().get() as number;
        expect(max, table).toBeGreaterThan(0);
      }
      const change = await to
        .insertInto('changes')
        .values({ at: Date.now(), action: 'test', summary: 'after the copy' })
        .returning('id')
        .executeTakeFirstOrThrow();
      expect(change.id).toBeGreaterThan(
        sqliteOf(t).prepare('SELECT max(id) FROM changes').pluck().get() as number,
      );
      const audit = await to
        .insertInto('audit_log')
        .values({ at: Date.now(), action: 'test.after-copy' })
        .returning('id')
        .executeTakeFirstOrThrow();
      expect(audit.id).toBeGreaterThan(
        sqliteOf(t).prepare('SELECT max(id) FROM audit_log').pluck().get() as number,
      );
      // The append-only triggers let the copy insert, and still hold.
      await expect(to.updateTable('audit_log').set({ detail: 'edited' }).execute()).rejects.toThrow(
        /append-only/,
      );
      await expect(to.deleteFrom('audit_log').execute()).rejects.toThrow(/append-only/);
    } finally {
      await from.destroy();
      await to.destroy();
    }
  }, 60_000);

  it('serves the same galleries from the copy: the app on PostgreSQL, to the sessions people had', async () => {
    const database = await connectDatabase({ url: pg.url });
    try {
      const services = createServices({
        database,
        storage: t.services.storage,
        clock: t.now,
        config: t.config,
      });
      const onPostgres = createApp({ config: t.config, services, log: pino({ level: 'silent' }) });
      const get = (path: string, person: Client) =>
        onPostgres.request(new URL(path, t.config.appOrigin).toString(), {
          headers: { Cookie: person.cookieHeader() },
        });
      const cards = (html: string) => attrs(html, '[id^="image-"]', 'id');
      for (const [person, count] of [
        [admin, 2],
        [mia, 1],
      ] as const) {
        const onSqlite = cards(await (await person.get('/')).text());
        expect(onSqlite).toHaveLength(count);
        const copied = await get('/', person);
        expect(copied.status).toBe(200);
        expect(cards(await copied.text())).toEqual(onSqlite);
      }
      const page = await get(`/images/${photo}`, admin);
      expect(page.status).toBe(200);
      expect(text(await page.text(), 'h1')).toBe('Beach at dusk');
      // The search index is built on the copy: the renamed title and the other image's name are found.
      expect(cards(await (await get('/?q=dusk', admin)).text())).toEqual([`image-${photo}`]);
      expect(cards(await (await get('/?q=chart', admin)).text())).toHaveLength(1);
      expect(services.databaseKind).toBe('postgres');
    } finally {
      await database.close();
    }
  });

  it('refuses a target that is not empty, and changes nothing on it', async () => {
    const to = openKysely({ url: pg.url });
    try {
      const before = await Promise.all(COPY_ORDER.map((table) => rowsOf(to, table)));
      const again = await cli(['db:copy', '--to', target], env);
      expect(again.code).toBe(1);
      expect(again.err).toContain('is not empty');
      expect(again.err).toContain('Nothing was copied');
      expect(`${again.out}${again.err}`).not.toContain(PASSWORD_IN_URL);
      expect(again.err).not.toMatch(/\n\s+at /);
      expect(await Promise.all(COPY_ORDER.map((table) => rowsOf(to, table)))).toEqual(before);
    } finally {
      await to.destroy();
    }
  }, 60_000);

  it('copies one moment of an install the app keeps writing to', async () => {
    const live = await freshPostgres();
    const to = openKysely({ url: live.url });
    try {
      // Logins write a session and an audit row each, all through the copy.
      let writing = true;
      const writer = (async () => {
        let n = 0;
        while (writing) {
          const res = await t.client().post('/login', { email: 'mia@example.com', password: PASSWORD });
          expect(res.status).toBe(303);
          n++;
        }
        return n;
      })();
      await new Promise((r) => setTimeout(r, 100));
      const before = await t.count('audit_log');
      const made = await cli(['db:copy', '--to', live.url], env);
      const after = await t.count('audit_log');
      writing = false;
      expect(await writer).toBeGreaterThan(0);
      expect(made.code, made.err).toBe(0);
      const copied = await rowsOf(to, 'audit_log');
      expect(copied.length).toBeGreaterThanOrEqual(before);
      expect(copied.length).toBeLessThanOrEqual(after);
      // The rows up to the moment of the copy, exactly; and sessions of that same moment.
      const from = openKysely({ sqlite: sqliteOf(t) });
      try {
        expect(copied).toEqual((await rowsOf(from, 'audit_log')).slice(0, copied.length));
        const sessions = new Set((await rowsOf(from, 'sessions')).map((s) => s.id));
        for (const s of await rowsOf(to, 'sessions')) expect(sessions.has(s.id)).toBe(true);
      } finally {
        await from.destroy();
      }
    } finally {
      await to.destroy();
      await live.drop();
    }
  }, 60_000);

  it('refuses a target whose schema is newer than this app', async () => {
    const newer = await freshPostgres();
    const db = openKysely({ url: newer.url });
    try {
      await db.schema.createTable('schema_version').addColumn('version', 'integer').execute();
      await db
        .insertInto('schema_version' as never)
        .values({ version: postgresMigrations.length + 1 } as never)
        .execute();
      const refused = await cli(['db:copy', '--to', newer.url], env);
      expect(refused.code).toBe(1);
      expect(refused.err).toContain('newer than this app');
      const tables = await db.introspection.getTables();
      expect(tables.map((x) => x.name)).toEqual(['schema_version']);
    } finally {
      await db.destroy();
      await newer.drop();
    }
  }, 60_000);

  it('explains a bad URL, an unreachable server or a missing --to, without a stack trace or the password', async () => {
    const notPostgres = await cli(['db:copy', '--to', `mysql://root:${PASSWORD_IN_URL}@127.0.0.1/db`], env);
    expect(notPostgres.code).toBe(1);
    expect(notPostgres.err).toContain('must be a postgres:// URL');
    const notUrl = await cli(['db:copy', '--to', 'not a url'], env);
    expect(notUrl.code).toBe(1);
    expect(notUrl.err).toContain('must be a URL');
    const unreachable = await cli(
      ['db:copy', '--to', `postgres://app:${PASSWORD_IN_URL}@127.0.0.1:1/gallery`],
      env,
    );
    expect(unreachable.code).toBe(1);
    expect(unreachable.err).toContain('Cannot reach PostgreSQL at postgres://app:***@127.0.0.1:1/gallery');
    for (const run of [notPostgres, notUrl, unreachable]) {
      expect(`${run.out}${run.err}`).not.toContain(PASSWORD_IN_URL);
      expect(run.err).not.toMatch(/\n\s+at /);
    }
    const usage = await cli(['db:copy'], env);
    expect(usage.code).toBe(2);
    expect(usage.err).toContain('Usage: s3-gallery db:copy --to');
    const help = await cli(['--help'], env);
    expect(help.out).toContain('db:copy --to');
  }, 60_000);
});

/** The test app's SQLite connection: db:copy reads a SQLite install, so these tests run on SQLite only. */
function sqliteOf(t: TestApp) {
  const { sqlite } = t.services.database;
  if (!sqlite) throw new Error('db:copy tests need the test app on SQLite');
  return sqlite;
}
