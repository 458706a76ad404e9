/**
 * The renditions row: our job queue beside a plain sharp pipeline, on the same photo-like 12 MP
 * JPEGs, the same number of files in flight, in this process, ROUNDS rounds taken in turns.
 *
 * Ours is the real thing: the app's services on a real SQLite file and a real embedded store on
 * loopback, each image uploaded for real (presign, a multipart POST to the store, completion)
 * while no worker runs, then the workers started and timed until drain() resolves, so the figure
 * is processing alone: the GET of the original to a temp file, the decode, both copies and the
 * placeholder, the two PUTs and the transaction that marks the image ready.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import sharp from 'sharp';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { connectDatabase } from '../../src/db/database.js';
import { systemClock } from '../../src/services/clock.js';
import { createServices } from '../../src/services/index.js';
import { makeRenditions } from '../../src/services/thumbnails.js';
import { createStorage } from '../../src/storage/s3.js';
import { Client, signUp } from '../../test/support/app.js';
import { startTestStore } from '../../test/support/store.js';
import { fmt, median, percent, type Row } from './table.js';

/**
 * What a typical app does with an uploaded photo, written without our code: from the file on
 * disk, a 1600 px display copy (WebP q82) and a 400 px thumbnail (WebP q72), each turned upright,
 * as two pipelines side by side (sharp's own shrink-on-load makes each decode cheap).
 */
async function sharpAlone(file: string): Promise<void> {
  const copy = (px: number, quality: number) =>
    sharp(file)
      .autoOrient()
      .resize({ width: px, height: px, fit: 'inside', withoutEnlargement: true })
      .webp({ quality })
      .toBuffer();
  await Promise.all([copy(1600, 82), copy(400, 72)]);
}

/** Runs `work` on every item, `inFlight` at a time; returns the wall time in ms. */
async function timed<T>(items: T[], inFlight: number, work: (item: T) => Promise<void>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < items.length) await work(items[next++] as T);
    }),
  );
  return performance.now() - t0;
}

/** The app's services on a fresh SQLite file and embedded store, workers stopped, one user signed in. */
async function ourApp(dataDir: string) {
  const store = await startTestStore();
  const config = loadConfig({
    NODE_ENV: 'production',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'silent',
    S3_ENDPOINT: store.endpoint,
    S3_BUCKET: store.bucket,
    S3_REGION: store.region,
    S3_ACCESS_KEY_ID: store.credentials.accessKeyId,
    S3_SECRET_ACCESS_KEY: store.credentials.secretAccessKey,
    S3_FORCE_PATH_STYLE: 'true',
  });
  if (!config.s3) throw new Error('no storage in the bench config');
  const database = await connectDatabase({ sqliteFile: path.join(dataDir, 'gallery.db') });
  const services = createServices({
    database,
    storage: createStorage(config.s3),
    clock: systemClock,
    config,
  });
  const log = pino({ level: 'silent' });
  const app = createApp({ config, services, log });
  const client = new Client((input, init) => app.request(input, init), config.appOrigin, config.appOrigin);
  await signUp(client, 'renditions@example.com');

  /** What upload.js does for one file: presign, POST to the bucket, completion named by ETag. */
  async function upload(photo: Buffer, name: string): Promise<void> {
    const presign = await client.postJson('/uploads/presign', { name, size: photo.length });
    if (presign.status !== 200) throw new Error(`presign answered ${presign.status}`);
    const policy = (await presign.json()) as { key: string; url: string; fields: Record<string, string> };
    const form = new FormData();
    for (const [k, v] of Object.entries(policy.fields)) form.append(k, v);
    form.append('Content-Type', 'image/jpeg');
    form.append('file', new Blob([new Uint8Array(photo)]), name);
    const stored = await fetch(policy.url, { method: 'POST', body: form });
    await stored.arrayBuffer();
    if (!stored.ok) throw new Error(`the store answered ${stored.status}`);
    const etag = stored.headers.get('ETag') ?? undefined;
    const done = await client.postJson('/uploads/complete', { key: policy.key, etag });
    if (done.status !== 200) throw new Error(`completion answered ${done.status}: ${await done.text()}`);
  }

  const ready = async () =>
    Number(
      (
        await database.q
          .selectFrom('images')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('state', '=', 'ready')
          .executeTakeFirstOrThrow()
      ).n,
    );

  return {
    workers: config.processing.workers,
    /** Uploads every photo with no worker running, then times the workers from start to drained. */
    async processAll(photos: Buffer[]): Promise<number> {
      await timed(photos, 2, (photo) => upload(photo, 'camera.jpg'));
      const readyBefore = await ready();
      const status = await services.processingStatus();
      if (status.waiting !== photos.length)
        throw new Error(`${status.waiting} jobs wait, not ${photos.length}`);
      const t0 = performance.now();
      const stopWorkers = services.jobs.start(log);
      await services.jobs.drain();
      const ms = performance.now() - t0;
      await stopWorkers();
      const made = (await ready()) - readyBefore;
      if (made !== photos.length) throw new Error(`${made} of ${photos.length} images became ready`);
      return ms;
    },
    async close() {
      await database.close();
      await store.close();
    },
  };
}

/**
 * Renditions of `images` uploads cycling through `photos`, ours beside sharp alone, `rounds`
 * rounds in turns (who goes first alternates); the medians. Returns the row and sharp's rate
 * (images/s), the baseline of the overall rate measured later.
 */
export async function renditionsRow(
  photos: Buffer[],
  o: { images: number; rounds: number },
): Promise<{ row: Row; sharpRate: number }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 's3g-bench-renditions-'));
  const ours = await ourApp(path.join(dir, 'data'));
  try {
    mkdirSync(path.join(dir, 'files'));
    const files = photos.map((photo, i) => {
      const file = path.join(dir, 'files', `photo-${i}.jpg`);
      writeFileSync(file, photo);
      return file;
    });
    const batch = Array.from({ length: o.images }, (_, i) => i % photos.length);
    const rates = { ours: [] as number[], sharp: [] as number[], pipeline: [] as number[] };
    const rate = (ms: number) => o.images / (ms / 1000);
    const sides = [
      async () => rates.ours.push(rate(await ours.processAll(batch.map((i) => photos[i] as Buffer)))),
      async () =>
        rates.sharp.push(rate(await timed(batch, ours.workers, (i) => sharpAlone(files[i] as string)))),
      // Not a side of the row: where the time goes, our pipeline without the queue and the bucket.
      async () =>
        rates.pipeline.push(
          rate(
            await timed(batch, ours.workers, async (i) => {
              await makeRenditions(files[i] as string, 'image/jpeg');
            }),
          ),
        ),
    ];
    // One untimed round of each first: sharp's and the app's modules load, the caches warm.
    await ours.processAll(photos);
    await timed(files, ours.workers, sharpAlone);
    for (let round = 0; round < o.rounds; round++) {
      for (const side of round % 2 === 0 ? sides : [...sides].reverse()) await side();
    }
    const list = (xs: number[]) => xs.map((r) => fmt(r, 2)).join(', ');
    console.log(
      `renditions, images/s per round: ours ${list(rates.ours)}; sharp alone ${list(rates.sharp)}; ` +
        `makeRenditions alone, from disk (no queue, no bucket) ${list(rates.pipeline)} ` +
        `(median ${percent(median(rates.pipeline) / median(rates.sharp))} of sharp alone)`,
    );
    const oursRate = median(rates.ours);
    const sharpRate = median(rates.sharp);
    const sizes = photos.map((p) => p.length / 1024 ** 2);
    return {
      sharpRate,
      row: {
        measure:
          `Renditions of 12 MP JPEGs (${photos.length} photo-like files, ${fmt(Math.min(...sizes))}–${fmt(Math.max(...sizes))} MiB), ` +
          `${o.images} images, ${ours.workers} at once: images/s (median of ${o.rounds} rounds in turns)`,
        ours: `${fmt(oursRate, 2)} (job queue: GET, one decode, 2 WebP + placeholder, 2 PUTs, ready)`,
        baseline: `${fmt(sharpRate, 2)} (sharp alone: 1600 px q82 + 400 px q72 WebP, upright, from disk)`,
        ratio: percent(oursRate / sharpRate),
        target: '≥ 90%',
        met: oursRate / sharpRate >= 0.9,
      },
    };
  } finally {
    await ours.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
