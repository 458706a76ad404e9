import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { StoreChange } from '@s3-gallery/s3-store';
import { sql } from 'kysely';
import { type Logger, pino } from 'pino';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { connectDatabase, type DatabaseTarget } from '../../src/db/database.js';
import type { AccessKeys } from '../../src/services/access-keys.js';
import { createServices } from '../../src/services/index.js';
import type { LoginLimits } from '../../src/services/login.js';
import type { User } from '../../src/services/users.js';
import { createStorage } from '../../src/storage/s3.js';
import { attr } from './html.js';
import { postgresForTest } from './postgres.js';
import { startTestStore } from './store.js';

const HOUR = 60 * 60 * 1000;

export interface TestAppOptions {
  env?: Record<string, string>;
  /** how SNS certificates and subscription URLs are fetched (see services/bucket-events.ts) */
  bucketEventsFetch?: (url: string) => Promise<string>;
  loginLimits?: Partial<LoginLimits>;
  /** where the app logs; nowhere by default */
  log?: Logger;
  /**
   * Whether background workers process uploads as they come, as a server's do (the default); when
   * false, jobs wait until the test calls t.settle(), which then runs them itself.
   */
  workers?: boolean;
  /**
   * Whether the store tells the app of every change, as the embedded store does in a server (the
   * live pickup of outside changes); off by default, so tests of reconcile see what they put.
   */
  livePickup?: boolean;
}

/**
 * Which database the suite runs on: SQLite unless TEST_DIALECT=postgres (the "postgres" project in
 * vitest.config.ts), then a PostgreSQL database of the test file's own at TEST_DATABASE_URL's
 * server, emptied between its test apps (see postgresForTest).
 */
export const testDialect: 'sqlite' | 'postgres' =
  process.env.TEST_DIALECT === 'postgres' ? 'postgres' : 'sqlite';

/**
 * A real app on a fresh SQLite file in a temp dir (or an empty PostgreSQL database, see testDialect), talking to a real embedded store on its own
 * loopback port, with a clock the test moves by hand. It starts a minute past the current hour:
 * presigned URLs must be valid against the store's real clock.
 */
export async function makeTestApp(opts: TestAppOptions = {}) {
  const dataDir = mkdtempSync(path.join(tmpdir(), 's3g-test-'));
  let noticeChange: ((change: StoreChange) => void) | undefined;
  // People's own keys work as in a server: the store asks the services (made below) on each request.
  let accessKeys: AccessKeys | undefined;
  const store = await startTestStore({
    ...(opts.livePickup ? { onChange: (change: StoreChange) => noticeChange?.(change) } : {}),
    keys: async (id) => accessKeys?.grantFor(id),
    // After close the database is gone: a late request is not audited (tests assert the rows they expect).
    onAccess: (entry) => void accessKeys?.recordRequest(entry).catch(() => {}),
  });
  const config = loadConfig({
    DATA_DIR: dataDir,
    LOG_LEVEL: 'silent',
    NODE_ENV: 'test',
    S3_ENDPOINT: store.endpoint,
    S3_BUCKET: store.bucket,
    S3_REGION: store.region,
    S3_ACCESS_KEY_ID: store.credentials.accessKeyId,
    S3_SECRET_ACCESS_KEY: store.credentials.secretAccessKey,
    S3_FORCE_PATH_STYLE: 'true',
    ...opts.env,
  });
  if (!config.s3) throw new Error('test config has no storage');
  const storage = createStorage(config.s3);
  const pg = testDialect === 'postgres' ? await postgresForTest() : null;
  const databaseTarget: DatabaseTarget = pg
    ? { url: pg.url }
    : { sqliteFile: path.join(dataDir, 'gallery.db') };
  const database = await connectDatabase(databaseTarget);
  let now = Math.floor(Date.now() / HOUR) * HOUR + 60_000;
  const clock = () => now;
  const services = createServices({
    database,
    storage,
    clock,
    config,
    ...(opts.loginLimits ? { loginLimits: opts.loginLimits } : {}),
    ...(opts.bucketEventsFetch ? { bucketEventsFetch: opts.bucketEventsFetch } : {}),
    embeddedStore: {
      endpoint: store.endpoint,
      bucket: store.bucket,
      region: store.region,
      keyFile: path.join(dataDir, 'access-keys.key'),
    },
  });
  accessKeys = services.accessKeys;
  const log = opts.log ?? pino({ level: 'silent' });
  const app = createApp({ config, services, log });
  const stopPickup = services.outsideChanges.start(log);
  if (opts.livePickup) noticeChange = services.outsideChanges.notice;
  const stopWorkers = opts.workers === false ? async () => {} : services.jobs.start(log);
  return {
    app,
    config,
    services,
    store,
    dataDir,
    /** The app's database: another instance connects to it with connectDatabase(databaseTarget). */
    databaseTarget,
    now: () => now,
    advance(ms: number) {
      now += ms;
    },
    client(origin = config.appOrigin) {
      return new Client((input, init) => app.request(input, init), config.appOrigin, origin);
    },
    async user(email: string): Promise<User> {
      const user = await services.users.findByEmail(email);
      if (!user) throw new Error(`no user ${email}`);
      return user;
    },
    /** Rows of `table` matching `where` (SQL both dialects read alike). */
    async count(table: string, where = '1 = 1'): Promise<number> {
      const { rows } = await sql<{
        n: number | string;
      }>`SELECT count(*) AS n FROM ${sql.table(table)} WHERE ${sql.raw(where)}`.execute(database.q);
      return Number(rows[0]?.n);
    },
    /** Rows straight into the database, for tests of listing that need many images but no pixels. */
    async seedImages(ownerId: string, n: number) {
      const rows = Array.from({ length: n }, (_, i) => {
        const id = randomUUID().replaceAll('-', '');
        // Every third image shares a timestamp with its neighbour: ties must not lose or repeat rows.
        const created = now - Math.floor(i / 3) * 1000;
        const base = `users/${ownerId}`;
        return {
          id,
          owner_id: ownerId,
          title: `Seeded ${i}`,
          original_name: `seed-${i}.png`,
          original_key: `${base}/originals/${id}`,
          display_key: `${base}/display/${id}.webp`,
          thumb_key: `${base}/thumbs/${id}.webp`,
          content_type: 'image/png',
          bytes: 100,
          width: 10,
          height: 10,
          created_at: created,
          updated_at: created,
        };
      });
      for (let i = 0; i < rows.length; i += 500) {
        await database.q
          .insertInto('images')
          .values(rows.slice(i, i + 500))
          .execute();
      }
    },
    async imageIdsNewestFirst(ownerId: string): Promise<string[]> {
      const rows = await database.q
        .selectFrom('images')
        .select('id')
        .where('owner_id', '=', ownerId)
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .execute();
      return rows.map((r) => r.id);
    },
    /** Waits until every upload so far is processed (ready or failed). */
    settle: () => services.jobs.drain(),
    async close() {
      await stopWorkers();
      await stopPickup();
      await database.close();
      await pg?.release();
      await store.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export type TestApp = Awaited<ReturnType<typeof makeTestApp>>;

type Fetch = (input: string, init: RequestInit) => Response | Promise<Response>;

/** A browser stand-in: keeps cookies and sends the Origin header a browser sends with posts. */
export class Client {
  readonly cookies = new Map<string, string>();

  constructor(
    private readonly fetchFn: Fetch,
    private readonly base: string,
    private readonly origin: string,
  ) {}

  async get(path: string, headers: Record<string, string> = {}): Promise<Response> {
    return this.send(path, { method: 'GET', headers });
  }

  async post(path: string, fields: Record<string, string> = {}, headers: Record<string, string> = {}) {
    return this.postForm(path, Object.entries(fields), headers);
  }

  /** A form post that may repeat a field, as checkboxes do. */
  async postForm(path: string, fields: [string, string][], headers: Record<string, string> = {}) {
    return this.send(path, {
      method: 'POST',
      body: new URLSearchParams(fields).toString(),
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: this.origin, ...headers },
    });
  }

  async postJson(path: string, body: unknown) {
    return this.send(path, {
      method: 'POST',
      body: JSON.stringify(body),
      headers: { 'Content-Type': 'application/json', Accept: 'application/json', Origin: this.origin },
    });
  }

  /** A second client that starts with these cookies and keeps its own from then on. */
  clone(): Client {
    const copy = new Client(this.fetchFn, this.base, this.origin);
    for (const [name, value] of this.cookies) copy.cookies.set(name, value);
    return copy;
  }

  cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  private async send(path: string, init: RequestInit): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookies.size > 0) headers.set('Cookie', this.cookieHeader());
    const res = await this.fetchFn(new URL(path, this.base).toString(), {
      ...init,
      headers,
      redirect: 'manual',
    });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair?.indexOf('=') ?? -1;
      if (!pair || eq < 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (value === '' || /max-age=0/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return res;
  }
}

export const PASSWORD = 'correct horse battery';

export async function signUp(client: Client, email: string, extra: Record<string, string> = {}) {
  const res = await client.post('/signup', { email, password: PASSWORD, ...extra });
  if (res.status !== 303) throw new Error(`sign-up of ${email} failed: ${res.status} ${await res.text()}`);
  return res;
}

/** The token of the invite link the admins' page shows once, after creating it. */
export function inviteTokenOf(html: string): string | undefined {
  const link = new URL(attr(html, '#new-link', 'value') ?? '', 'http://no-link.invalid');
  const token = link.pathname === '/signup' ? link.searchParams.get('invite') : null;
  return token && /^[a-z0-9]+$/.test(token) ? token : undefined;
}

/** Signs up a user with the given role through an invite link the admin creates. */
export async function signUpWithRole(t: TestApp, admin: Client, email: string, role: string) {
  return signUpByInvite(admin, t.client(), email, role);
}

/** The same for any app, a spawned server's too: `client` becomes the new account. */
export async function signUpByInvite(admin: Client, client: Client, email: string, role: string) {
  const res = await admin.post('/admin/invites', { role });
  const token = inviteTokenOf(await res.text());
  if (!token) throw new Error('no invite link on the page');
  await signUp(client, email, { invite: token });
  return client;
}
