import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { openDatabase } from '../src/db/connection.js';
import { createServices } from '../src/services/index.js';
import { createStorage } from '../src/storage/s3.js';
import { embeddedStorageOptions } from '../src/storage-setup.js';
import { type Client, signUp } from './support/app.js';
import { makeJpeg } from './support/images.js';
import { freePort, type ServerProcess, spawnServer } from './support/process.js';
import type { Policy } from './support/uploads.js';

const DAY = 24 * 60 * 60 * 1000;

/** Starts a multipart POST to the bucket and sends its body slowly; resolves with the final status. */
function slowUpload(policy: Policy, bytes: Buffer, chunks: number, delayMs: number) {
  const boundary = `b${Math.random().toString(16).slice(2)}`;
  const head = Buffer.from(
    Object.entries({ ...policy.fields, 'Content-Type': 'image/jpeg' })
      .map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`)
      .join('') + `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.jpg"\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const url = new URL(policy.url);
  let started!: () => void;
  const isStarted = new Promise<void>((resolve) => {
    started = resolve;
  });
  const done = new Promise<number>((resolve) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        agent: false,
        headers: {
          'Content-Type': `multipart/form-data; boundary=${boundary}`,
          'Content-Length': head.length + bytes.length + tail.length,
          // The server's "100 Continue" proves it has accepted and begun this request: in flight.
          Expect: '100-continue',
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', () => resolve(-1));
    const size = Math.ceil(bytes.length / chunks);
    let i = 0;
    req.once('continue', () => {
      started();
      req.write(head);
      next();
    });
    const next = () => {
      if (i * size >= bytes.length) {
        req.end(tail);
        return;
      }
      req.write(bytes.subarray(i * size, (i + 1) * size));
      i++;
      setTimeout(next, delayMs);
    };
  });
  return { isStarted, done };
}

async function presign(client: Client, name: string): Promise<Policy> {
  const res = await client.postJson('/uploads/presign', { name });
  expect(res.status).toBe(200);
  return (await res.json()) as Policy;
}

/** Services on the data dir after a crash, with a clock a day ahead and the restarted store. */
function servicesAfter(dataDir: string, port: number) {
  const creds = JSON.parse(readFileSync(path.join(dataDir, 'embedded-s3.json'), 'utf8'));
  const config = loadConfig({
    DATA_DIR: dataDir,
    PORT: String(port),
    APP_ORIGIN: `http://127.0.0.1:${port}`,
  });
  const db = openDatabase(path.join(dataDir, 'gallery.db'));
  const storage = createStorage(embeddedStorageOptions(config, creds, port));
  return createServices({ db, storage, clock: () => Date.now() + DAY, config });
}

describe('the server process under signals', () => {
  let dataDir: string;
  let server: ServerProcess | undefined;

  afterEach(async () => {
    if (server && server.child.exitCode === null) {
      server.child.kill('SIGKILL');
      await server.exited;
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('finishes 50 in-flight uploads after SIGTERM, then exits 0', async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 's3g-term-'));
    server = await spawnServer(dataDir, await freePort());
    const client = server.client();
    await signUp(client, 'owner@example.com');
    const policies = await Promise.all(Array.from({ length: 50 }, (_, i) => presign(client, `f${i}.jpg`)));
    const bytes = await makeJpeg(64, 64);
    const uploads = policies.map((p) => slowUpload(p, bytes, 8, 100));
    await Promise.all(uploads.map((u) => u.isStarted));
    server.child.kill('SIGTERM');
    const statuses = await Promise.all(uploads.map((u) => u.done));
    expect(statuses).toEqual(Array(50).fill(201));
    expect(await server.exited).toBe(0);

    // Every upload really landed, and the database closed cleanly.
    server = await spawnServer(dataDir, Number(new URL(server.origin).port));
    const services = servicesAfter(dataDir, Number(new URL(server.origin).port));
    for (const p of policies) expect((await services.storage.head(p.key))?.size).toBe(bytes.length);
    expect(services.db.pragma('integrity_check', { simple: true })).toBe('ok');
    services.db.close();
  });

  it('after SIGKILL mid-upload and mid-completion, shows no partial object and reconcile settles the rest', async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 's3g-kill-'));
    const port = await freePort();
    server = await spawnServer(dataDir, port);
    const client = server.client();
    await signUp(client, 'owner@example.com');

    // A completion cut short: the process dies while it decodes a large image.
    const big = await makeJpeg(4000, 3000);
    const finished = await presign(client, 'big.jpg');
    const put = slowUpload(finished, big, 1, 0);
    expect(await put.done).toBe(201);
    const completing = client.postJson('/uploads/complete', { key: finished.key }).catch(() => null);
    await new Promise((r) => setTimeout(r, 60));

    // An upload cut short: half the bytes are on their way when the process dies.
    const cut = await presign(client, 'cut.jpg').catch(() => null);
    const cutUpload = cut ? slowUpload(cut, big, 20, 50) : null;
    await cutUpload?.isStarted;
    server.child.kill('SIGKILL');
    await server.exited;
    await completing;

    server = await spawnServer(dataDir, port);
    const services = servicesAfter(dataDir, port);
    expect(services.db.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(readdirSync(path.join(dataDir, 'objects', 'tmp'))).toEqual([]);
    if (cut) expect(await services.storage.head(cut.key)).toBeNull();

    const report = await services.reconcile.run({ apply: true });
    const owner = services.users.findByEmail('owner@example.com');
    const rows = services.db
      .prepare('SELECT original_key, display_key, thumb_key FROM images WHERE owner_id = ?')
      .all(owner?.id) as Record<string, string>[];
    // The cut-short completion ends as exactly one image, whichever side of the kill it reached.
    expect(rows.map((r) => r.original_key)).toEqual([finished.key]);
    expect(services.db.prepare('SELECT count(*) FROM pending_uploads').pluck().get()).toBe(0);
    if (cut) expect(report.expired).toContain(cut.key);
    // Nothing in the bucket that no row names: renditions written before the kill are gone.
    const referenced = new Set(rows.flatMap((r) => Object.values(r)));
    const listed = await services.storage.list(`users/${owner?.id}/`);
    expect(listed.keys.map((k) => k.key).sort()).toEqual([...referenced].sort());
    services.db.close();
  });
});
