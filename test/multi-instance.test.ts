import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../src/config.js';
import { type AppDb, connectDatabase, databaseTarget } from '../src/db/database.js';
import { createServices } from '../src/services/index.js';
import { LOGIN_LIMITS } from '../src/services/login.js';
import { createStorage } from '../src/storage/s3.js';
import { Client, PASSWORD, signUp, signUpByInvite } from './support/app.js';
import { attrs } from './support/html.js';
import { makeJpeg, makePng } from './support/images.js';
import { type FreshPostgres, freshPostgres, postgresIsReachable } from './support/postgres.js';
import { freePort, type ServerProcess, spawnServer } from './support/process.js';
import { MailServer, startReceiver } from './support/receivers.js';
import { spawnStandaloneStore } from './support/standalone-store.js';
import { type Policy, postToBucket } from './support/uploads.js';
import { startWriteHoldingProxy } from './support/write-holding-proxy.js';

/**
 * Two app processes on one PostgreSQL database and one external bucket (the s3-store command, run
 * on its own), each with its notification worker and sweeper running, as two containers behind a
 * load balancer are. The test is the browser: it picks which instance each request goes to.
 *
 * MULTI_INSTANCE_DB=sqlite runs the same story with both processes on one SQLite file instead (no
 * PostgreSQL needed): the harness's own check, and a comparison when something fails on PostgreSQL.
 */
const onSqlite = process.env.MULTI_INSTANCE_DB === 'sqlite';
const runs = onSqlite || (await postgresIsReachable());

const SECRET = 'a webhook secret of some length';
const DAY = 24 * 60 * 60 * 1000;
/** The notification worker's poll interval (notifications.startWorker's default). */
const WORKER_INTERVAL_MS = 5000;
const PATIENCE = { timeout: 20_000, interval: 50 };

describe.skipIf(!runs)(`two instances on one ${onSqlite ? 'SQLite file' : 'PostgreSQL'}`, () => {
  let root: string;
  let pg: FreshPostgres | undefined;
  let store: Awaited<ReturnType<typeof spawnStandaloneStore>>;
  let proxy: Awaited<ReturnType<typeof startWriteHoldingProxy>>;
  let mail: MailServer;
  let hook: Awaited<ReturnType<typeof startReceiver>>;
  let a: ServerProcess;
  let b: ServerProcess;
  /** What both instances are told their public address is: the load balancer's (nothing listens there). */
  let appOrigin: string;
  /** The test's own connection, to count rows. */
  let database: AppDb;
  let env: (dataDir: string, s3Endpoint: string) => Record<string, string>;
  let dirB: string;

  /** A browser whose requests the balancer sends to `to`; `from` lends it its cookies. */
  const browser = (to: ServerProcess, from?: Client) => {
    const client = new Client((input, init) => fetch(input, init), to.origin, appOrigin);
    for (const [name, value] of from?.cookies ?? []) client.cookies.set(name, value);
    return client;
  };

  beforeAll(async () => {
    root = mkdtempSync(path.join(tmpdir(), 's3g-multi-'));
    for (const dir of ['store', 'a', 'b']) mkdirSync(path.join(root, dir));
    mail = new MailServer();
    [store, , hook, pg] = await Promise.all([
      spawnStandaloneStore(path.join(root, 'store')),
      mail.start(),
      startReceiver(),
      onSqlite ? undefined : freshPostgres(),
    ]);
    // A reaches the bucket through a proxy that can hold its requests, for the kill below.
    proxy = await startWriteHoldingProxy(store.origin);
    appOrigin = `http://127.0.0.1:${await freePort()}`;
    env = (dataDir, s3Endpoint) => ({
      ...(pg ? { DATABASE_URL: pg.url } : {}),
      ...store.env(s3Endpoint),
      APP_ORIGIN: appOrigin,
      SIGNUP: 'open',
      SMTP_URL: `smtp://127.0.0.1:${mail.port}`,
      NOTIFY_EMAIL_FROM: 'Gallery <gallery@example.com>',
      WEBHOOK_URL: hook.url,
      WEBHOOK_SECRET: SECRET,
      // One SQLite file for both when there is no PostgreSQL; with it, DATA_DIR holds nothing shared.
      DATA_DIR: dataDir,
    });
    const [portA, portB] = [await freePort(), await freePort()];
    // Started together, as two containers are: the first start's migrations run once.
    const dirA = path.join(root, pg ? 'a' : 'shared');
    dirB = path.join(root, pg ? 'b' : 'shared');
    mkdirSync(dirA, { recursive: true });
    [a, b] = await Promise.all([
      spawnServer(dirA, portA, env(dirA, proxy.origin)),
      spawnServer(dirB, portB, env(dirB, store.origin)),
    ]);
    database = await connectDatabase(pg ? { url: pg.url } : { sqliteFile: path.join(dirB, 'gallery.db') });
  }, 90_000);

  afterAll(async () => {
    for (const server of [a, b]) {
      if (server && server.child.exitCode === null && server.child.signalCode === null) {
        server.child.kill('SIGTERM');
        await server.exited;
      }
    }
    await database?.close();
    await Promise.allSettled([proxy?.close(), store?.stop(), mail?.stop(), hook?.close()]);
    await pg?.drop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  const count = async (table: 'images' | 'outbox' | 'pending_uploads', ownerId?: string) => {
    let query = database.q.selectFrom(table).select((eb) => eb.fn.countAll<number | string>().as('n'));
    if (ownerId && table !== 'outbox') query = query.where('owner_id', '=', ownerId);
    return Number((await query.executeTakeFirstOrThrow()).n);
  };
  const userId = async (email: string) =>
    (await database.q.selectFrom('users').select('id').where('email', '=', email).executeTakeFirstOrThrow())
      .id;

  /** The ids of the images the gallery page shows its signed-in user. */
  async function galleryIds(client: Client): Promise<string[]> {
    const res = await client.get('/');
    expect(res.status).toBe(200);
    return attrs(await res.text(), '[id^="image-"]', 'id').map((id) => id.slice('image-'.length));
  }

  async function presign(client: Client, name: string, size: number): Promise<Policy> {
    const res = await client.postJson('/uploads/presign', { name, size });
    expect(res.status, await res.clone().text()).toBe(200);
    return (await res.json()) as Policy;
  }

  let admin: Client;
  let alice: Client;
  let uploadedAt = 0;
  let firstImage = '';

  it('runs both on the one database, and a session made on A is valid on B', async () => {
    for (const server of [a, b]) {
      const health = await fetch(`${server.origin}/healthz`);
      expect(await health.json()).toMatchObject({
        status: 'ok',
        database: 'ok',
        databaseKind: onSqlite ? 'sqlite' : 'postgres',
      });
    }
    admin = browser(a);
    await signUp(admin, 'admin@example.com');
    expect((await browser(a, admin).get('/')).status).toBe(200);
    // The same cookie, sent to B: B finds the session A made.
    const onB = browser(b, admin);
    const page = await onB.get('/');
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('admin@example.com');
    // Without it B answers as to anyone signed out.
    expect((await browser(b).get('/')).status).toBe(303);

    // The other way round: signed in on B, known on A; signed out on A, gone on B too.
    const again = browser(b);
    expect((await again.post('/login', { email: 'admin@example.com', password: PASSWORD })).status).toBe(303);
    expect((await browser(a, again).get('/')).status).toBe(200);
    expect((await browser(a, again).post('/logout')).status).toBe(303);
    expect((await browser(b, again).get('/')).status).toBe(303);
    expect((await browser(b, admin).get('/')).status).toBe(200);
  });

  it('shows an upload made through A in the gallery B serves', async () => {
    // Invited on A, signed up on B.
    alice = await signUpByInvite(browser(a, admin), browser(b), 'alice@example.com', 'member');
    const png = await makePng();
    const onA = browser(a, alice);
    const policy = await presign(onA, 'sunset.png', png.length);
    expect(new URL(policy.url).origin).toBe(store.origin);
    expect((await postToBucket(policy, png, 'image/png', 'sunset.png')).status).toBe(201);
    const done = await onA.postJson('/uploads/complete', { key: policy.key });
    expect(done.status, await done.clone().text()).toBe(200);
    uploadedAt = Date.now();
    firstImage = ((await done.json()) as { imageId: string }).imageId;

    expect(await galleryIds(browser(b, alice))).toEqual([firstImage]);
    // The original is copied into place just after the answer (409 until then).
    const viewed = await vi.waitFor(async () => {
      const res = await browser(b, alice).get(`/images/${firstImage}/download`);
      expect(res.status).toBe(303);
      return res;
    });
    const file = await fetch(viewed.headers.get('location') ?? '');
    expect(Buffer.from(await file.arrayBuffer()).equals(png)).toBe(true);
  });

  it('counts failed logins made on both instances together, refusing at the same total as one instance', async () => {
    await signUpByInvite(browser(a, admin), browser(a), 'bob@example.com', 'member');
    await signUpByInvite(browser(a, admin), browser(b), 'carol@example.com', 'member');
    // A new browser (no device cookie) from one address, failing until the throttle answers.
    const failuresUntilRefused = async (email: string, route: (attempt: number) => ServerProcess) => {
      for (let attempt = 0; attempt < 20; attempt++) {
        const res = await browser(route(attempt)).post('/login', { email, password: 'wrong password!' });
        if (res.status === 429) return attempt;
        expect(res.status).toBe(401);
      }
      return Number.POSITIVE_INFINITY;
    };
    const onOne = await failuresUntilRefused('bob@example.com', () => a);
    const onBoth = await failuresUntilRefused('carol@example.com', (i) => (i % 2 === 0 ? a : b));
    expect(onOne).toBe(LOGIN_LIMITS.perAccountAndIp.limit);
    expect(onBoth).toBe(onOne);
    // Refused on both, even with the right password.
    for (const server of [a, b]) {
      const res = await browser(server).post('/login', { email: 'carol@example.com', password: PASSWORD });
      expect(res.status).toBe(429);
      // The servers' clocks are real: a second may have passed since the window began.
      const wait = Number(res.headers.get('retry-after'));
      expect(wait).toBeLessThanOrEqual(LOGIN_LIMITS.perAccountAndIp.windowMs / 1000);
      expect(wait).toBeGreaterThanOrEqual(LOGIN_LIMITS.perAccountAndIp.windowMs / 1000 - 5);
    }
  });

  it('sends one email and one webhook for one change although both workers deliver', async () => {
    await vi.waitFor(() => {
      expect(hook.received.length).toBeGreaterThan(0);
      expect(mail.mails.length).toBeGreaterThan(0);
    }, PATIENCE);
    // Each worker has had at least two more rounds since the change was recorded.
    const settled = uploadedAt + 2 * WORKER_INTERVAL_MS + 2000;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, settled - Date.now())));
    expect(hook.received).toHaveLength(1);
    const change = JSON.parse(hook.received[0]?.body ?? '{}').change;
    expect(change).toMatchObject({
      action: 'upload',
      imageId: firstImage,
      actor: { email: 'alice@example.com' },
    });
    expect(change.url).toBe(`${appOrigin}/images/${firstImage}`);
    expect(mail.mails).toHaveLength(1);
    expect(mail.mails[0]?.to).toEqual(['admin@example.com']);
    expect(mail.mails[0]?.text).toContain('alice@example.com');
    expect(
      Number(
        (
          await database.q
            .selectFrom('outbox')
            .select((eb) => eb.fn.countAll<number | string>().as('n'))
            .where('sent_at', 'is', null)
            .executeTakeFirstOrThrow()
        ).n,
      ),
    ).toBe(0);
    expect(await count('outbox')).toBe(2);
  }, 40_000);

  it('loses nothing when A is killed mid-upload: B completes what A had not started, the sweep what A was completing', async () => {
    const aliceId = await userId('alice@example.com');
    const onA = browser(a, alice);
    const jpeg = await makeJpeg(800, 600);
    const png = await makePng(320, 240);
    // Two uploads signed on A whose files reached the bucket.
    const waiting = await presign(onA, 'waiting.jpg', jpeg.length);
    const cut = await presign(onA, 'cut.png', png.length);
    expect((await postToBucket(waiting, jpeg, 'image/jpeg', 'waiting.jpg')).status).toBe(201);
    expect((await postToBucket(cut, png, 'image/png', 'cut.png')).status).toBe(201);

    // A completes the second and reads it from the bucket: that read is held, and A dies meanwhile.
    const held = proxy.holdRequestsFor(cut.key);
    const completing = onA.postJson('/uploads/complete', { key: cut.key }).then(
      (res) => res.status,
      () => -1,
    );
    await held;
    a.child.kill('SIGKILL');
    await a.exited;
    expect(await completing).toBe(-1); // the browser got no answer
    await proxy.release();

    // The browser tries again and the balancer sends it to B.
    const onB = browser(b, alice);
    const finished = await onB.postJson('/uploads/complete', { key: waiting.key });
    expect(finished.status, await finished.clone().text()).toBe(200);
    const waitingImage = ((await finished.json()) as { imageId: string }).imageId;
    // A's claim on the other outlives A: B does not finish it twice, and shows nothing of it yet.
    expect((await onB.postJson('/uploads/complete', { key: cut.key })).status).toBe(409);
    expect((await galleryIds(onB)).sort()).toEqual([firstImage, waitingImage].sort());

    // Once its policy has expired, the sweep settles it (an instance's timer, or reconcile --apply;
    // run here with a clock a day ahead, since a spawned process's clock cannot be moved).
    const config = loadConfig({ ...env(dirB, store.origin), LOG_LEVEL: 'silent' });
    if (!config.s3) throw new Error('no bucket settings');
    const later = await connectDatabase(databaseTarget(config));
    try {
      const services = createServices({
        database: later,
        storage: createStorage(config.s3),
        clock: () => Date.now() + DAY,
        config,
      });
      const report = await services.reconcile.run({ apply: true });
      expect(report.completed).toEqual([cut.key]);
      expect(report.skipped).toEqual([]);

      const ids = await galleryIds(onB);
      expect(ids).toHaveLength(3);
      expect(ids).toEqual(expect.arrayContaining([firstImage, waitingImage]));
      expect(await count('images', aliceId)).toBe(3);
      expect(
        Number(
          (
            await database.q
              .selectFrom('pending_uploads')
              .select((eb) => eb.fn.countAll<number | string>().as('n'))
              .where('owner_id', '=', aliceId)
              .where('closed_at', 'is', null)
              .executeTakeFirstOrThrow()
          ).n,
        ),
      ).toBe(0);
      // B's workers make the renditions of what B completed; the job reconcile added is due only on
      // its clock, a day ahead: it runs it itself.
      await services.jobs.drain();
      await vi.waitFor(
        async () => {
          const processing = await database.q
            .selectFrom('images')
            .select('id')
            .where('owner_id', '=', aliceId)
            .where('state', '<>', 'ready')
            .execute();
          expect(processing).toEqual([]);
        },
        { timeout: 30_000, interval: 100 },
      );
      // Every object under her prefix is one a row names, and every key a row names is there.
      const rows = await database.q
        .selectFrom('images')
        .select(['original_key', 'display_key', 'thumb_key'])
        .where('owner_id', '=', aliceId)
        .execute();
      const listed = (await services.storage.list(`users/${aliceId}/`)).keys.map((k) => k.key).sort();
      expect(listed).toEqual(rows.flatMap((r) => [r.original_key, r.display_key, r.thumb_key]).sort());
      // Each file arrived whole, once.
      for (const [name, bytes] of [
        ['waiting', jpeg],
        ['cut', png],
      ] as const) {
        const image = await database.q
          .selectFrom('images')
          .select('id')
          .where('owner_id', '=', aliceId)
          .where('title', '=', name)
          .execute();
        expect(image, name).toHaveLength(1);
        const res = await onB.get(`/images/${image[0]?.id}/download`);
        expect(res.status).toBe(303);
        const file = await fetch(res.headers.get('location') ?? '');
        expect(Buffer.from(await file.arrayBuffer()).equals(bytes), name).toBe(true);
      }
    } finally {
      await later.close();
    }
  }, 40_000);
});
