import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import sharp from 'sharp';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../src/config.js';
import { openDatabase } from '../src/db/connection.js';
import { connectDatabase } from '../src/db/database.js';
import { createServices } from '../src/services/index.js';
import { embeddedStorageOptions } from '../src/storage/embedded.js';
import { createStorage } from '../src/storage/s3.js';
import { type Client, signUp, signUpByInvite } from './support/app.js';
import { attrs } from './support/html.js';
import { makeJpeg } from './support/images.js';
import { freePort, type ServerProcess, spawnServer } from './support/process.js';
import { startTestStore } from './support/store.js';
import { expectBucketMatchesRows, type Policy, postToBucket, upload } from './support/uploads.js';
import { startWriteHoldingProxy } from './support/write-holding-proxy.js';

const DAY = 24 * 60 * 60 * 1000;
const KiB = 1024;
const MiB = 1024 * KiB;
// Generous: two cores, other test files and argon2 sign-ups all compete for them.
const PATIENCE = { timeout: 30_000, interval: 25 };
// busboy may hold back a few bytes that could start the multipart boundary: look a little earlier.
const BOUNDARY_SLACK = 128;

/**
 * A browser's multipart POST of `bytes` to the bucket, whose file bytes the test lets out:
 * `sendUpTo(n)` sends the file up to byte n, `finish()` the rest. `status` is the answer, or -1
 * when the connection broke without one.
 */
function formPost(policy: Policy, bytes: Buffer) {
  const boundary = `b${randomBytes(8).toString('hex')}`;
  const fields = Object.entries({ ...policy.fields, 'Content-Type': 'image/jpeg' })
    .map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`)
    .join('');
  const head = Buffer.from(
    `${fields}--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.jpg"\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const url = new URL(policy.url);
  const req = http.request({
    host: url.hostname,
    port: url.port,
    path: url.pathname,
    method: 'POST',
    agent: false,
    headers: {
      'Content-Type': `multipart/form-data; boundary=${boundary}`,
      'Content-Length': head.length + bytes.length + tail.length,
    },
  });
  const status = new Promise<number>((resolve) => {
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(-1));
    });
    req.on('error', () => resolve(-1));
  });
  req.write(head);
  let sent = 0;
  return {
    status,
    sendUpTo(n: number) {
      req.write(bytes.subarray(sent, n));
      sent = n;
    },
    finish() {
      req.end(Buffer.concat([bytes.subarray(sent), tail]));
    },
  };
}

/** The store's temp files: where an upload's bytes sit until they are published by rename. */
const tmpDirOf = (dataDir: string) => path.join(dataDir, 'objects', 'tmp');

function tempFiles(dataDir: string): Buffer[] {
  const dir = tmpDirOf(dataDir);
  const files: Buffer[] = [];
  for (const name of readdirSync(dir)) {
    try {
      files.push(readFileSync(path.join(dir, name)));
    } catch {
      // Published or removed between the listing and the read.
    }
  }
  return files;
}

/**
 * Waits until the first `n` bytes of each body are on the store's disk, in its temp files: the
 * bytes before n (less the boundary slack) are found there, and a file is written in order.
 */
async function waitForBytesOnDisk(dataDir: string, bodies: Buffer[], n: number) {
  const probes = bodies.map((b) => b.subarray(n - BOUNDARY_SLACK - 4 * KiB, n - BOUNDARY_SLACK));
  await vi.waitFor(() => {
    const files = tempFiles(dataDir);
    const missing = probes.filter((p) => !files.some((f) => f.includes(p))).length;
    if (missing > 0) throw new Error(`${missing} of ${probes.length} uploads have not reached the disk yet`);
  }, PATIENCE);
}

/** Waits until nothing listens on the port any more: a stopping server has closed its listener. */
async function waitUntilRefused(port: number) {
  await vi.waitFor(
    () =>
      new Promise<void>((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1');
        socket.once('connect', () => {
          socket.destroy();
          reject(new Error('still accepting connections'));
        });
        socket.once('error', () => resolve());
      }),
    PATIENCE,
  );
}

async function presign(client: Client, name: string, size: number): Promise<Policy> {
  const res = await client.postJson('/uploads/presign', { name, size });
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as Policy;
}

/** The ids of the images the gallery page shows its signed-in user. */
async function galleryIds(client: Client): Promise<string[]> {
  const res = await client.get('/');
  expect(res.status).toBe(200);
  return attrs(await res.text(), '[id^="image-"]', 'id').map((id) => id.slice('image-'.length));
}

/** The original is copied into place just after its upload's answer. */
const PATIENTLY = { timeout: 10_000, interval: 100 };

/** What the image's download link serves: the original's bytes (once copied into place: 409 until then). */
async function downloadOriginal(client: Client, imageId: string): Promise<Buffer> {
  const res = await vi.waitFor(async () => {
    const answer = await client.get(`/images/${imageId}/download`);
    expect(answer.status).toBe(303);
    return answer;
  }, PATIENTLY);
  const file = await fetch(res.headers.get('location') ?? '');
  expect(file.status).toBe(200);
  return Buffer.from(await file.arrayBuffer());
}

/**
 * Services on the data dir after a crash, with a clock a day ahead, on the given storage settings;
 * `db` is the SQLite connection underneath, for checks of the file itself.
 */
async function servicesAfter(dataDir: string, env: Record<string, string>, embeddedPort?: number) {
  const config = loadConfig({ DATA_DIR: dataDir, ...env });
  const storageOptions =
    embeddedPort === undefined
      ? config.s3
      : embeddedStorageOptions(
          config,
          JSON.parse(readFileSync(path.join(dataDir, 'embedded-s3.json'), 'utf8')),
          embeddedPort,
        );
  if (!storageOptions) throw new Error('no storage settings');
  const db = openDatabase(path.join(dataDir, 'gallery.db'));
  const services = createServices({
    database: await connectDatabase({ sqlite: db }),
    storage: createStorage(storageOptions),
    clock: () => Date.now() + DAY,
    config,
  });
  return { ...services, db };
}

describe('the server process under signals', () => {
  let dataDir: string;
  let server: ServerProcess | undefined;
  const cleanups: (() => Promise<void>)[] = [];

  afterEach(async () => {
    if (server && server.child.exitCode === null) {
      server.child.kill('SIGKILL');
      await server.exited;
    }
    for (const cleanup of cleanups.splice(0)) await cleanup();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('finishes 50 uploads it had begun storing when SIGTERM came, then exits 0', {
    timeout: 120_000,
  }, async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 's3g-term-'));
    const port = await freePort();
    server = await spawnServer(dataDir, port, { SIGNUP: 'invite' });
    // Ten uploads each for five accounts: one person may hold only so many open uploads.
    const admin = server.client();
    await signUp(admin, 'admin@example.com');
    const uploaders = [admin];
    for (let i = 1; i < 5; i++)
      uploaders.push(await signUpByInvite(admin, server.client(), `member${i}@example.com`, 'member'));
    const bodies = Array.from({ length: 50 }, () => randomBytes(64 * KiB));
    const policies: Policy[] = [];
    for (const [i, body] of bodies.entries())
      policies.push(await presign(uploaders[i % 5] as Client, `f${i}.jpg`, body.length));
    const posts = policies.map((p, i) => formPost(p, bodies[i] as Buffer));

    // Each upload is under way in the store: half of its file is on the disk.
    for (const post of posts) post.sendUpTo(32 * KiB);
    await waitForBytesOnDisk(dataDir, bodies, 32 * KiB);
    server.child.kill('SIGTERM');
    await waitUntilRefused(port);
    for (const post of posts) post.finish();

    expect(await Promise.all(posts.map((p) => p.status))).toEqual(Array(50).fill(201));
    expect(await server.exited).toBe(0);

    // Every upload really landed, whole, and the database closed cleanly.
    server = await spawnServer(dataDir, port, { SIGNUP: 'invite' });
    const services = await servicesAfter(dataDir, { PORT: String(port), APP_ORIGIN: server.origin }, port);
    for (const [i, p] of policies.entries()) {
      const stored = await services.storage.getRange(p.key, 0, 64 * KiB - 1);
      expect(Buffer.from(stored).equals(bodies[i] as Buffer), p.key).toBe(true);
    }
    expect(services.db.pragma('integrity_check', { simple: true })).toBe('ok');
    services.db.close();
  });

  it('after SIGKILL with half an upload on the disk, shows no partial object, sweeps the temp file and loses nothing stored', {
    timeout: 120_000,
  }, async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 's3g-kill-upload-'));
    const port = await freePort();
    server = await spawnServer(dataDir, port);
    const client = server.client();
    await signUp(client, 'owner@example.com');
    const kept = await makeJpeg(640, 480);
    const keptId = await upload(client, kept, 'kept.jpg');
    await downloadOriginal(client, keptId); // its original is in place before the kill

    const body = randomBytes(2 * MiB);
    const cut = await presign(client, 'cut.jpg', body.length);
    const post = formPost(cut, body);
    post.sendUpTo(1 * MiB);
    await waitForBytesOnDisk(dataDir, [body], 1 * MiB);
    server.child.kill('SIGKILL');
    await server.exited;
    expect(await post.status).toBe(-1); // no answer: the process died mid-body
    expect(tempFiles(dataDir).some((f) => f.includes(body.subarray(0, 4 * KiB)))).toBe(true);

    server = await spawnServer(dataDir, port);
    expect(readdirSync(tmpDirOf(dataDir))).toEqual([]);
    const services = await servicesAfter(dataDir, { PORT: String(port), APP_ORIGIN: server.origin }, port);
    expect(services.db.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(await services.storage.head(cut.key)).toBeNull();
    // The session survived; the kept image is whole, and nothing of the cut one shows.
    expect(await galleryIds(client)).toEqual([keptId]);
    expect((await downloadOriginal(client, keptId)).equals(kept)).toBe(true);

    const report = await services.reconcile.run({ apply: true });
    expect(report.expired).toContain(cut.key);
    expect(report.completed).toEqual([]);
    expect((await client.postJson('/uploads/complete', { key: cut.key })).status).toBe(404);
    expect(await galleryIds(client)).toEqual([keptId]);
    const ownerId = (await services.users.findByEmail('owner@example.com'))?.id ?? '';
    await expectBucketMatchesRows(services, ownerId);
    services.db.close();
  });

  it('after SIGKILL mid-queue, the next start finishes every image: no job lost, none finished twice, no orphan', {
    timeout: 120_000,
  }, async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 's3g-kill-queue-'));
    const port = await freePort();
    // One worker, and claims that lapse 2 s after a worker's death (30 s by default).
    const env = { PROCESSING_WORKERS: '1', PROCESSING_LEASE_SECONDS: '2' };
    server = await spawnServer(dataDir, port, env);
    const client = server.client();
    await signUp(client, 'owner@example.com');
    const photo = await sharp({
      create: {
        width: 3000,
        height: 2000,
        channels: 3,
        background: '#808080',
        noise: { type: 'gaussian', mean: 128, sigma: 40 },
      },
    })
      .jpeg({ quality: 85 })
      .toBuffer();
    const N = 12;
    const ids: string[] = [];
    for (let i = 0; i < N; i++) ids.push(await upload(client, photo, `photo-${i}.jpg`));
    const db = new BetterSqlite3(path.join(dataDir, 'gallery.db'), { readonly: true });
    cleanups.push(async () => {
      db.close();
    });
    const readyIds = () =>
      (db.prepare("SELECT id FROM images WHERE state = 'ready'").all() as { id: string }[]).map((r) => r.id);
    await vi.waitFor(() => {
      if (readyIds().length < 2) throw new Error('fewer than two images ready yet');
    }, PATIENCE);
    server.child.kill('SIGKILL');
    await server.exited;
    // Killed mid-queue: some images were ready, the rest still waited (one of them being rendered).
    const readyBefore = new Set(readyIds());
    expect(readyBefore.size).toBeLessThan(N);

    server = await spawnServer(dataDir, port, env);
    const restarted = server;
    const finishedLines = () =>
      restarted
        .output()
        .split('\n')
        .filter((line) => line.includes('"msg":"job finished"') && line.includes('"outcome":"ready"'));
    // A job logs "job finished" just after it commits the image as ready: wait for both.
    await vi.waitFor(
      () => {
        if (readyIds().length < N) throw new Error(`${readyIds().length} of ${N} ready`);
        const logged = finishedLines().length;
        if (logged < N - readyBefore.size) throw new Error(`${logged} finished jobs logged`);
      },
      { timeout: 60_000, interval: 100 },
    );
    // The second run rendered each image the first left unfinished once, and none it had finished.
    const finished = finishedLines();
    for (const id of ids) {
      const runs = finished.filter((line) => line.includes(`"image":"${id}"`)).length;
      expect(runs, id).toBe(readyBefore.has(id) ? 0 : 1);
    }
    expect(db.prepare('SELECT count(*) AS n FROM jobs').get()).toEqual({ n: 0 });
    const services = await servicesAfter(dataDir, { PORT: String(port), APP_ORIGIN: server.origin }, port);
    const ownerId = (await services.users.findByEmail('owner@example.com'))?.id ?? '';
    // The run cut short by the kill left no object that no image names.
    await expectBucketMatchesRows(services, ownerId);
    services.db.close();
  });

  /**
   * A server on a fresh data dir whose bucket is a store behind a proxy that can hold requests, and
   * a 12 MP JPEG its owner has sent to the bucket but not completed.
   */
  async function uploadedBehindProxy() {
    dataDir = mkdtempSync(path.join(tmpdir(), 's3g-kill-complete-'));
    const store = await startTestStore();
    cleanups.push(() => store.close());
    const proxy = await startWriteHoldingProxy(store.origin);
    cleanups.push(() => proxy.close());
    const s3 = {
      S3_ENDPOINT: `${proxy.origin}/s3`,
      S3_BUCKET: store.bucket,
      S3_REGION: store.region,
      S3_ACCESS_KEY_ID: store.credentials.accessKeyId,
      S3_SECRET_ACCESS_KEY: store.credentials.secretAccessKey,
      S3_FORCE_PATH_STYLE: 'true',
    };
    const port = await freePort();
    const first = await spawnServer(dataDir, port, s3);
    server = first;
    const client = first.client();
    await signUp(client, 'owner@example.com');
    const jpeg = await makeJpeg(1200, 900);
    const policy = await presign(client, 'big.jpg', jpeg.length);
    expect((await postToBucket(policy, jpeg, 'image/jpeg', 'big.jpg')).status).toBe(201);
    return { first, proxy, s3, port, client, jpeg, policy };
  }

  it('after SIGKILL while completion waits on the store, shows nothing until reconcile completes exactly one image', {
    timeout: 120_000,
  }, async () => {
    const { first, proxy, s3, port, client, jpeg, policy } = await uploadedBehindProxy();

    // Completion has claimed the upload and reads it from the bucket: the store holds that read.
    const held = proxy.holdRequestsFor(policy.key);
    const completing = client.postJson('/uploads/complete', { key: policy.key }).then(
      (res) => res.status,
      () => -1,
    );
    await held;
    first.child.kill('SIGKILL');
    await first.exited;
    expect(await completing).toBe(-1); // the browser got no answer
    await proxy.release();

    server = await spawnServer(dataDir, port, s3);
    expect(await galleryIds(client)).toEqual([]);
    const services = await servicesAfter(dataDir, { ...s3, PORT: String(port), APP_ORIGIN: server.origin });
    expect(services.db.pragma('integrity_check', { simple: true })).toBe('ok');

    const report = await services.reconcile.run({ apply: true });
    expect(report.completed).toEqual([policy.key]);
    const ids = await galleryIds(client);
    expect(ids).toHaveLength(1);
    expect((await downloadOriginal(client, ids[0] as string)).equals(jpeg)).toBe(true);
    // What the dead completion wrote is gone; only the objects of the one image stay.
    const ownerId = (await services.users.findByEmail('owner@example.com'))?.id ?? '';
    await expectBucketMatchesRows(services, ownerId);
    services.db.close();
  });

  it('after SIGKILL while an answered upload is copied into place, the next start finishes exactly that image', {
    timeout: 120_000,
  }, async () => {
    const { first, proxy, s3, port, client, jpeg, policy } = await uploadedBehindProxy();

    // Answered, the completion starts copying the file into place: the store holds that write, and
    // the process dies.
    const held = proxy.holdWrites();
    const done = await client.postJson('/uploads/complete', { key: policy.key });
    expect(done.status).toBe(200);
    const { imageId } = (await done.json()) as { imageId: string };
    await held;
    first.child.kill('SIGKILL');
    await first.exited;
    // What the app had sent still reaches the store after its death.
    const late = await proxy.release();
    expect(late.length).toBeGreaterThan(0);
    for (const status of late) expect(status >= 200 && status < 300, `store answered ${status}`).toBe(true);

    server = await spawnServer(dataDir, port, s3);
    expect(await galleryIds(client)).toEqual([imageId]);
    const services = await servicesAfter(dataDir, { ...s3, PORT: String(port), APP_ORIGIN: server.origin });
    expect(services.db.pragma('integrity_check', { simple: true })).toBe('ok');
    // Its job copies the file again (the same version: harmless), drops the staging object and
    // makes the renditions: the one image, whole, and no object any image does not name.
    const ownerId = (await services.users.findByEmail('owner@example.com'))?.id ?? '';
    await expectBucketMatchesRows(services, ownerId);
    expect((await downloadOriginal(client, imageId)).equals(jpeg)).toBe(true);
    const report = await services.reconcile.run({ apply: true });
    expect([...report.completed, ...report.imported, ...report.orphansDeleted]).toEqual([]);
    expect(await galleryIds(client)).toEqual([imageId]);
    services.db.close();
  });
});
