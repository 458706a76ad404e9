import { randomUUID } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { type Logger, pino } from 'pino';
import sharp from 'sharp';
import { thumbHashToApproximateAspectRatio } from 'thumbhash';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { connectDatabase } from '../src/db/database.js';
import { jobsRepository } from '../src/db/repositories/jobs.js';
import { MAX_ATTEMPTS } from '../src/jobs/queue.js';
import { TEMP_PREFIX } from '../src/jobs/renditions.js';
import { IMAGE_THREAD_NICE } from '../src/jobs/thread-priority.js';
import { createServices } from '../src/services/index.js';
import { POLICY_CLOCK_MARGIN_MS, POLICY_TTL_SECONDS } from '../src/services/pending-uploads.js';
import { SHARE_COPY_TEMP_PREFIX } from '../src/services/share-copies.js';
import { PIXELS_TEMP_PREFIX } from '../src/services/thumbnails.js';
import { createStorage } from '../src/storage/s3.js';
import {
  type Client,
  makeTestApp,
  signUp,
  signUpWithRole,
  type TestApp,
  testDialect,
} from './support/app.js';
import { attr, attrs, markup, text } from './support/html.js';
import { makeJpeg, makePng } from './support/images.js';
import { INTERNAL_ERROR, keyOf, makeInterceptedApp } from './support/store-interceptor.js';
import { deleteForGood, expectBucketMatchesRows, upload, uploadWithJs } from './support/uploads.js';

const MINUTE = 60_000;

/** A logger that keeps what it writes, to count the jobs each instance finished. */
function recordingLogger(): { log: Logger; lines: () => Record<string, unknown>[] } {
  const out: string[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => out.push(line) });
  return { log, lines: () => out.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

describe('background processing', () => {
  let t: TestApp;
  let admin: Client;
  let alice: Client;
  let aliceId: string;

  beforeAll(async () => {
    // No workers: jobs wait until a test settles them, so the processing state can be looked at.
    t = await makeTestApp({ workers: false });
    admin = t.client();
    await signUp(admin, 'admin@example.com');
    alice = await signUpWithRole(t, admin, 'alice@example.com', 'member');
    aliceId = (await t.user('alice@example.com')).id;
  });
  afterAll(() => t.close());

  it('answers at once with the image processing; its placeholder asks again until the thumbnail is there', async () => {
    const { done } = await uploadWithJs(alice, await makeJpeg(900, 1200), 'portrait.jpg', 'image/jpeg');
    expect(done.status).toBe(200);
    const { imageId } = (await done.json()) as { imageId: string };
    expect(await t.count('jobs', `image_id = '${imageId}'`)).toBe(1);

    // The grid: a box that says so, in place of the thumbnail, whose link fetches itself again (htmx).
    const gallery = await (await alice.get('/')).text();
    const card = `#image-${imageId}`;
    expect(text(gallery, `${card} .pending`)).toBe('Processing…');
    expect(attr(gallery, `${card} a.thumb-link`, 'hx-get')).toBe(`/images/${imageId}/thumb?wait=4`);
    expect(attr(gallery, `${card} a.thumb-link`, 'hx-trigger')).toBe('load delay:2s');
    expect(attrs(gallery, `${card} img`, 'src')).toEqual([]);
    // Its checkbox sits outside what is swapped, so a ticked one stays ticked.
    expect(markup(gallery, `${card} a.thumb-link`)).not.toContain('checkbox');
    // Each time it asks again it waits twice as long, up to 30 s.
    const stillProcessing = await alice.get(`/images/${imageId}/thumb?wait=4`);
    expect(stillProcessing.status).toBe(200);
    const again = await stillProcessing.text();
    expect(attr(again, 'a.thumb-link', 'hx-get')).toBe(`/images/${imageId}/thumb?wait=8`);
    expect(attr(again, 'a.thumb-link', 'hx-trigger')).toBe('load delay:4s');
    const longest = await (await alice.get(`/images/${imageId}/thumb?wait=30`)).text();
    expect(attr(longest, 'a.thumb-link', 'hx-get')).toBe(`/images/${imageId}/thumb?wait=30`);
    const odd = await (await alice.get(`/images/${imageId}/thumb?wait=99999`)).text();
    expect(attr(odd, 'a.thumb-link', 'hx-trigger')).toBe('load delay:2s');

    // The image page says so, updates itself with htmx, and reloads without JavaScript.
    const page = await (await alice.get(`/images/${imageId}`)).text();
    expect(text(page, 'figure.display [role=status]')).toContain('being made');
    expect(attr(page, '#image-main', 'hx-get')).toBe(`/images/${imageId}`);
    expect(markup(page, 'head noscript')).toContain('http-equiv="refresh"');
    const health = (await (await t.client().get('/healthz')).json()) as { processing: { waiting: number } };
    expect(health.processing.waiting).toBe(1);

    await t.settle();
    const ready = await (await alice.get(`/images/${imageId}/thumb`)).text();
    expect(attr(ready, 'a.thumb-link', 'hx-get')).toBeUndefined();
    expect(attr(ready, 'img', 'src')).toMatch(/\/thumbs\/[^"]+\.webp/);
    // The ThumbHash is inline, so the shape and colours show before the thumbnail arrives.
    const hash = attr(ready, 'img', 'data-thumbhash') ?? '';
    expect(hash.length).toBeGreaterThan(20);
    expect(hash.length).toBeLessThan(48);
    const aspect = thumbHashToApproximateAspectRatio(Buffer.from(hash, 'base64'));
    expect(aspect).toBeGreaterThan(0.6);
    expect(aspect).toBeLessThan(0.9); // 900 × 1200: portrait
    const grid = await (await alice.get('/')).text();
    expect(attr(grid, `${card} img`, 'data-thumbhash')).toBe(hash);
    const readyPage = await (await alice.get(`/images/${imageId}`)).text();
    expect(markup(readyPage, 'head')).not.toContain('http-equiv="refresh"');
    expect(attr(readyPage, '#image-main', 'hx-get')).toBeUndefined();
    expect(readyPage).toContain('900 × 1200');
    expect(await t.count('jobs')).toBe(0);
  });

  it.skipIf(process.platform !== 'linux')(
    "runs image work behind requests: libvips' threads at a lower priority, no other thread's changed",
    async () => {
      // /proc/self/task/<id>/stat: the name in parentheses, then fields whose 17th is the nice value.
      const threads = () =>
        readdirSync('/proc/self/task').flatMap((tid) => {
          try {
            const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
            const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
            const nice = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
            return [{ tid, name, nice }];
          } catch {
            return []; // ended meanwhile
          }
        });
      // Test files may share this process: an earlier one's threads (HEIC's decoder) count as they were.
      const before = new Map(threads().map((th) => [th.tid, th.nice]));
      await uploadWithJs(alice, await makeJpeg(1200, 900), 'landscape.jpg', 'image/jpeg');
      await t.settle();
      const after = threads();
      const own = os.getPriority(); // 0 unless the tests themselves run under `nice`
      const image = after.filter((th) => th.name.startsWith('libvips'));
      expect(image.length).toBeGreaterThan(0);
      expect(image.map((th) => th.nice)).toEqual(image.map(() => Math.min(19, own + IMAGE_THREAD_NICE)));
      const others = after.filter((th) => !th.name.startsWith('libvips'));
      expect(others.length).toBeGreaterThan(0);
      expect(others.map((th) => th.nice)).toEqual(others.map((th) => before.get(th.tid) ?? own));
      expect(others.filter((th) => th.nice === own).length).toBeGreaterThan(0); // the main thread among them
    },
  );

  it('removes the temp dirs a killed process left (an hour old), not younger ones', async () => {
    const dir = (prefix: string, name: string, ageMs: number) => {
      const at = path.join(tmpdir(), `${prefix}${name}-${randomUUID()}`);
      mkdirSync(at);
      writeFileSync(path.join(at, 'display.v'), 'pixels');
      const when = new Date(Date.now() - ageMs);
      utimesSync(at, when, when);
      return at;
    };
    const oldOriginal = dir(TEMP_PREFIX, 'old', 2 * 60 * MINUTE);
    const oldPixels = dir(PIXELS_TEMP_PREFIX, 'old', 2 * 60 * MINUTE);
    const oldCopy = dir(SHARE_COPY_TEMP_PREFIX, 'old', 2 * 60 * MINUTE); // a share copy being made
    // `s3g-copy-`: the database copy's snapshot (src/db/copy.ts), which may run for hours beside the app.
    const databaseCopy = dir('s3g-copy-', 'old', 2 * 60 * MINUTE);
    const young = dir(PIXELS_TEMP_PREFIX, 'young', 5 * MINUTE);
    // A link with the prefix (someone else's doing in a shared temp dir) is no dir of ours.
    const elsewhere = dir('s3g-test-target-', 'kept', 0);
    const link = path.join(tmpdir(), `${PIXELS_TEMP_PREFIX}link-${randomUUID()}`);
    symlinkSync(elsewhere, link);
    const longAgo = new Date(Date.now() - 2 * 60 * MINUTE);
    lutimesSync(link, longAgo, longAgo);
    try {
      // Starting the workers tidies first; stopping them at once waits for that.
      await t.services.jobs.start(pino({ level: 'silent' }))();
      expect(existsSync(oldOriginal)).toBe(false);
      expect(existsSync(oldPixels)).toBe(false);
      expect(existsSync(oldCopy)).toBe(false);
      expect(existsSync(path.join(databaseCopy, 'display.v'))).toBe(true);
      expect(existsSync(young)).toBe(true);
      expect(lstatSync(link).isSymbolicLink()).toBe(true);
      expect(existsSync(path.join(elsewhere, 'display.v'))).toBe(true);
    } finally {
      for (const made of [young, link, elsewhere, databaseCopy])
        rmSync(made, { recursive: true, force: true });
    }
  });

  it('renders only the file an image has now: a replacement or a delete while its job waits leaves no orphan', async () => {
    const first = await upload(alice, await makeJpeg(640, 480), 'first.jpg');
    const { done } = await uploadWithJs(alice, await makePng(300, 500), 'second.png', 'image/png', first);
    expect(done.status).toBe(200);
    const gone = await upload(alice, await makePng(200, 200), 'gone.png');
    await deleteForGood(alice, gone);
    expect(await t.count('jobs', `image_id = '${gone}'`)).toBe(0);

    await t.settle();
    const image = await t.services.images.getForUser(await t.user('alice@example.com'), first);
    expect([image.state, image.contentType, image.width, image.height]).toEqual([
      'ready',
      'image/png',
      300,
      500,
    ]);
    await expectBucketMatchesRows(t.services, aliceId);
  });

  it('ends a damaged file failed with the reason; "Try again" runs it again; an admin sees it listed', async () => {
    const jpeg = await makeJpeg(800, 600);
    // A JPEG's start (so its type is known) with its picture cut off.
    const { done } = await uploadWithJs(alice, jpeg.subarray(0, 2000), 'cut.jpg', 'image/jpeg');
    const { imageId } = (await done.json()) as { imageId: string };
    await t.settle();
    const failed = await t.services.images.getForUser(await t.user('alice@example.com'), imageId);
    expect(failed.state).toBe('failed');
    expect(failed.failure).toContain('could not be read as an image');
    await expectBucketMatchesRows(t.services, aliceId);

    const adminPage = await (await admin.get('/admin/processing')).text();
    expect(text(adminPage, 'table')).toContain('cut');
    expect(text(adminPage, 'table')).toContain('could not be read as an image');
    expect(attrs(adminPage, 'form', 'action')).toContain(`/images/${imageId}/retry`);

    // Someone else's image: nothing changes.
    const bob = await signUpWithRole(t, admin, 'bob@example.com', 'member');
    expect((await bob.post(`/images/${imageId}/retry`)).status).toBe(404);
    expect(await t.count('jobs')).toBe(0);

    expect((await alice.post(`/images/${imageId}/retry`)).status).toBe(303);
    expect(await t.count('jobs', `image_id = '${imageId}'`)).toBe(1);
    const again = await t.services.images.getForUser(await t.user('alice@example.com'), imageId);
    expect(again.state).toBe('processing');
    // Retrying what is not failed (processing now) adds nothing.
    expect((await alice.post(`/images/${imageId}/retry`)).status).toBe(303);
    expect(await t.count('jobs', `image_id = '${imageId}'`)).toBe(1);
    await t.settle();
    expect((await t.services.images.getForUser(await t.user('alice@example.com'), imageId)).state).toBe(
      'failed',
    );
    await deleteForGood(alice, imageId);
  });

  it("takes each person's first waiting image before anyone's second", async () => {
    const bob = await signUpWithRole(t, admin, 'carol@example.com', 'member');
    const aliceIds: string[] = [];
    for (let i = 0; i < 3; i++) aliceIds.push(await upload(alice, await makePng(100 + i, 100), `a-${i}.png`));
    const bobId = await upload(bob, await makePng(120, 100), 'b.png');
    const jobs = jobsRepository(t.services.database);
    const order: string[] = [];
    for (;;) {
      const job = await jobs.claimNext('test', t.now(), t.now() + MINUTE);
      if (!job) break;
      order.push(job.image_id);
    }
    // Bob queued after all of Alice's, yet goes second: after her first, before her second.
    expect(order).toEqual([aliceIds[0], bobId, aliceIds[1], aliceIds[2]]);
    t.advance(2 * MINUTE); // the test's claims lapse
    await t.settle();
    expect(await t.count('images', `state = 'processing'`)).toBe(0);
  });

  it.skipIf(testDialect !== 'postgres')(
    'runs each job once with two instances draining one queue',
    async () => {
      const ids: string[] = [];
      for (let i = 0; i < 12; i++)
        ids.push(await upload(alice, await makePng(300 + i, 200), `many-${i}.png`));
      const other = await connectDatabase(t.databaseTarget);
      if (!t.config.s3) throw new Error('no bucket settings');
      const second = createServices({
        database: other,
        storage: createStorage(t.config.s3),
        clock: t.now,
        config: t.config,
      });
      const a = recordingLogger();
      const b = recordingLogger();
      const stops = [t.services.jobs.start(a.log), second.jobs.start(b.log)];
      try {
        await vi.waitFor(async () => expect(await t.count('images', `state = 'processing'`)).toBe(0), {
          timeout: 30_000,
          interval: 50,
        });
      } finally {
        for (const stop of stops) await stop();
        await other.close();
      }
      const finished = [...a.lines(), ...b.lines()].filter((l) => l.msg === 'job finished');
      for (const id of ids) {
        expect(
          finished.filter((l) => l.image === id && l.outcome === 'ready'),
          id,
        ).toHaveLength(1);
      }
      await expectBucketMatchesRows(t.services, aliceId);
    },
  );
});

describe('processing against a store that fails', () => {
  let t: TestApp;
  let proxy: Awaited<ReturnType<typeof makeInterceptedApp>>['proxy'];
  let alice: Client;
  let close: () => Promise<void>;

  beforeAll(async () => {
    ({ t, proxy, client: alice, close } = await makeInterceptedApp());
  });
  afterAll(() => close());

  it(`retries a failed read, backing off, fails visibly after ${MAX_ATTEMPTS} runs, and "Try again" finishes it`, async () => {
    let reads = 0;
    // Whole reads of originals (the worker's) fail; the completion's ranged read of the first bytes works.
    proxy.onRequest((req) => {
      const isWholeRead = req.method === 'GET' && req.headers.range === undefined;
      if (!isWholeRead || !keyOf(req).includes('/originals/')) return undefined;
      reads++;
      return { answer: INTERNAL_ERROR };
    });
    const jpeg = await makeJpeg(640, 480);
    const { done } = await uploadWithJs(alice, jpeg, 'unlucky.jpg', 'image/jpeg');
    expect(done.status).toBe(200);
    const { imageId } = (await done.json()) as { imageId: string };
    const state = async () => {
      const row = await t.services.database.q
        .selectFrom('images')
        .select(['state', 'failure'])
        .where('id', '=', imageId)
        .executeTakeFirstOrThrow();
      return row;
    };
    const job = () =>
      t.services.database.q.selectFrom('jobs').selectAll().where('image_id', '=', imageId).executeTakeFirst();

    for (let run = 1; run < MAX_ATTEMPTS; run++) {
      await t.settle();
      const waiting = await job();
      // Released, to run again later (not now: the clock has not moved), with what went wrong.
      expect(waiting?.attempts, `run ${run}`).toBe(run);
      expect(waiting?.claimed_by).toBeNull();
      expect(waiting?.run_at).toBeGreaterThan(t.now());
      expect(waiting?.last_error).toBeTruthy();
      expect((await state()).state).toBe('processing');
      t.advance(10 * MINUTE); // past the longest backoff
    }
    await t.settle();
    expect(reads).toBe(MAX_ATTEMPTS * 3); // the SDK tries each read three times itself
    expect(await job()).toBeUndefined();
    const failed = await state();
    expect(failed.state).toBe('failed');
    expect(failed.failure).toContain('could not be read from storage');
    const page = await (await alice.get(`/images/${imageId}`)).text();
    expect(text(page, 'figure.display [role=alert]')).toContain('could not be read from storage');

    // The store is well again: "Try again" processes it.
    proxy.onRequest(() => undefined);
    expect((await alice.post(`/images/${imageId}/retry`)).status).toBe(303);
    await t.settle();
    expect((await state()).state).toBe('ready');
    const shown = await (await alice.get(`/images/${imageId}`)).text();
    const display = await fetch(attr(shown, 'figure.display img', 'src') ?? '');
    expect((await sharp(Buffer.from(await display.arrayBuffer())).metadata()).width).toBe(640);
  });

  it('keeps an answered upload through an outage of its copy into place: failed, kept from the sweep, and "Try again" finishes it', async () => {
    // Every copy fails: the completion's own after its answer, and each of the job's runs.
    proxy.onRequest((req) => (req.headers['x-amz-copy-source'] ? { answer: INTERNAL_ERROR } : undefined));
    const jpeg = await makeJpeg(480, 320);
    const { done, policy } = await uploadWithJs(alice, jpeg, 'outage.jpg', 'image/jpeg');
    expect(done.status).toBe(200);
    const { imageId } = (await done.json()) as { imageId: string };
    for (let run = 1; run <= MAX_ATTEMPTS; run++) {
      await t.settle();
      t.advance(10 * MINUTE); // past the longest backoff
    }
    const image = () =>
      t.services.database.q
        .selectFrom('images')
        .selectAll()
        .where('id', '=', imageId)
        .executeTakeFirstOrThrow();
    expect((await image()).state).toBe('failed');
    // The file is not in place yet, so the image still names where it is: the sweep leaves it be.
    expect((await image()).staged_key).toBe(policy.key);
    t.advance(POLICY_TTL_SECONDS * 1000 + POLICY_CLOCK_MARGIN_MS + 1000);
    const swept = await t.services.uploadSweeper.sweep({ apply: true });
    expect(swept.replaysDeleted).toEqual([]);
    expect(await t.services.storage.head(policy.key)).not.toBeNull();
    expect((await alice.get(`/images/${imageId}/download`)).status).toBe(409);

    // The store is well again: "Try again" copies the original into place and processes it.
    proxy.onRequest(() => undefined);
    expect((await alice.post(`/images/${imageId}/retry`)).status).toBe(303);
    await t.settle();
    expect([(await image()).state, (await image()).staged_key]).toEqual(['ready', null]);
    const download = await alice.get(`/images/${imageId}/download`);
    expect(download.status).toBe(303);
    const original = await fetch(download.headers.get('location') ?? '');
    expect(Buffer.from(await original.arrayBuffer()).equals(jpeg)).toBe(true);
    expect(await t.services.storage.head(policy.key)).toBeNull();
  });
});
