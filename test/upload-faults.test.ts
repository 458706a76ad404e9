import type http from 'node:http';
import sharp from 'sharp';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { POLICY_CLOCK_MARGIN_MS, POLICY_TTL_SECONDS } from '../src/services/pending-uploads.js';
import { SNIFF_BYTES } from '../src/services/thumbnails.js';
import type { Client, TestApp } from './support/app.js';
import { makePng } from './support/images.js';
import { INTERNAL_ERROR, keyOf, makeInterceptedApp, WORKERS } from './support/store-interceptor.js';
import { type Policy, postToBucket, untilOriginalsStored } from './support/uploads.js';

/** The keys a request reads: its own, and a copy's source. */
function keysRead(req: http.IncomingMessage): string[] {
  const source = req.headers['x-amz-copy-source'];
  const copied = typeof source === 'string' ? decodeURIComponent(source).replace(/^\/?gallery\//, '') : '';
  return [keyOf(req), copied].filter(Boolean);
}

describe('uploads against a store that fails or is slow', () => {
  let t: TestApp;
  let proxy: Awaited<ReturnType<typeof makeInterceptedApp>>['proxy'];
  let alice: Client;
  let aliceId: string;

  let close: () => Promise<void>;

  beforeAll(async () => {
    ({ t, proxy, client: alice, userId: aliceId, close } = await makeInterceptedApp());
  });
  beforeEach(() => proxy.onRequest(() => undefined));
  afterAll(() => close());

  async function uploadedNotCompleted(name: string, bytes?: Buffer): Promise<Policy> {
    const png = bytes ?? (await makePng());
    const res = await alice.postJson('/uploads/presign', { name, size: png.length });
    const policy = (await res.json()) as Policy;
    expect((await postToBucket(policy, png, 'image/png', name)).status).toBe(201);
    return policy;
  }

  it('skips an object the bucket cannot read, reports why, goes on, and settles it once it reads again', async () => {
    const broken = `users/${aliceId}/originals/broken.png`;
    const fine = `users/${aliceId}/originals/fine.png`;
    // Straight into the store, as an outside uploader would.
    await t.store.storage.put(broken, await makePng(), 'image/png');
    await t.store.storage.put(fine, await makePng(), 'image/png');
    const stuck = await uploadedNotCompleted('stuck.png');
    const unreadable = new Set([broken, stuck.key]);
    proxy.onRequest((req) =>
      keysRead(req).some((k) => unreadable.has(k)) ? { answer: INTERNAL_ERROR } : undefined,
    );
    t.advance(POLICY_TTL_SECONDS * 1000 + POLICY_CLOCK_MARGIN_MS + 1000);

    const report = await t.services.reconcile.run({ apply: true });
    expect(report.skipped.map((s) => s.key).sort()).toEqual([broken, stuck.key].sort());
    for (const s of report.skipped) expect(s.reason).toContain('HTTP 500');
    expect(report.imported).toEqual([fine]);
    // Skipped means left as it was: the objects, and the pending row, for the next run.
    expect(await t.store.storage.head(broken)).not.toBeNull();
    expect(await t.store.storage.head(stuck.key)).not.toBeNull();
    expect(await t.count('pending_uploads', `key = '${stuck.key}' AND closed_at IS NULL`)).toBe(1);
    expect(await t.count('pending_uploads', `key = '${broken}'`)).toBe(0);

    proxy.onRequest(() => undefined);
    const again = await t.services.reconcile.run({ apply: true });
    expect(again.skipped).toEqual([]);
    expect(again.imported).toEqual([broken]);
    expect(again.completed).toEqual([stuck.key]);
    expect(await t.count('images', `owner_id = '${aliceId}'`)).toBe(3);
    // Named, so a row left over says which.
    const left = await t.services.database.q
      .selectFrom('pending_uploads')
      .select(['key', 'closed_at'])
      .execute();
    expect(left).toEqual([]);
  });

  it('passes over an object listed under originals/ that is gone when it is read (a job moved it meanwhile)', async () => {
    // A completed upload's job copies its staging object into place and deletes it; a reconcile
    // that listed the object just before then finds nothing there.
    const vanished = `users/${aliceId}/originals/vanished.png`;
    const entry = `<Contents><Key>${vanished}</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>&quot;0f0e0d0c0b0a09080706050403020100&quot;</ETag><Size>100</Size><StorageClass>STANDARD</StorageClass></Contents>`;
    proxy.onRequest((req) =>
      req.method === 'GET' && new URL(req.url ?? '/', 'http://x').searchParams.has('list-type')
        ? { rewrite: (body) => body.replace('</ListBucketResult>', `${entry}</ListBucketResult>`) }
        : undefined,
    );
    const report = await t.services.reconcile.run({ apply: true });
    expect(report.imported).not.toContain(vanished);
    expect(report.rejected).not.toContain(vanished);
    expect(report.skipped.map((s) => s.key)).not.toContain(vanished);
    expect(await t.count('pending_uploads', `key = '${vanished}'`)).toBe(0);
    expect(await t.count('images', `original_name = 'vanished.png'`)).toBe(0);
  });

  it('never deletes the original of an upload completed after the sweep listed it as unfinished', async () => {
    // The sweep lists what is due, then settles it row by row; a late completion can finish one meanwhile.
    const ahead = (await (
      await alice.postJson('/uploads/presign', { name: 'never-sent.png' })
    ).json()) as Policy;
    t.advance(1000);
    const late = await uploadedNotCompleted('late.png');
    t.advance(POLICY_TTL_SECONDS * 1000 + POLICY_CLOCK_MARGIN_MS + 1000);
    const signal = () => {
      let open!: () => void;
      const opened = new Promise<void>((resolve) => {
        open = resolve;
      });
      return { open, opened };
    };
    const readSeen = signal();
    const readGo = signal();
    const sweepSeen = signal();
    const sweepGo = signal();
    proxy.onRequest((req) => {
      if (req.method === 'GET' && keyOf(req) === late.key) {
        readSeen.open();
        return { hold: readGo.opened };
      }
      if (req.method === 'HEAD' && keyOf(req) === ahead.key) {
        sweepSeen.open();
        return { hold: sweepGo.opened };
      }
      return undefined;
    });
    const completion = alice.postJson('/uploads/complete', { key: late.key });
    await readSeen.opened; // the completion holds its claim, reading the file
    const sweep = t.services.uploadSweeper.sweep({ apply: true });
    await sweepSeen.opened; // the sweep has listed the claimed row, and waits on the row before it
    readGo.open();
    const done = await completion;
    expect(done.status).toBe(200);
    await untilOriginalsStored(t);
    sweepGo.open();
    await sweep;

    const { imageId } = (await done.json()) as { imageId: string };
    const { original_key: original } = await t.services.database.q
      .selectFrom('images')
      .select('original_key')
      .where('id', '=', imageId)
      .executeTakeFirstOrThrow();
    expect(await t.store.storage.head(original)).not.toBeNull();
    expect(await t.store.storage.head(late.key)).toBeNull();
    const download = await alice.get(`/images/${imageId}/download`);
    expect(download.status).toBe(303);
    expect((await fetch(download.headers.get('location') ?? '')).status).toBe(200);
  });

  it(`answers completions without reading originals, and its ${WORKERS} workers read at most ${WORKERS} at once`, async () => {
    // Larger than the few KiB read to sniff the type, so whole-file reads can be told apart.
    const noise = await sharp({
      create: {
        width: 120,
        height: 100,
        channels: 3,
        background: { r: 0, g: 0, b: 0 },
        noise: { type: 'gaussian', mean: 128, sigma: 40 },
      },
    })
      .png()
      .toBuffer();
    expect(noise.length).toBeGreaterThan(SNIFF_BYTES);
    const policies: Policy[] = [];
    for (let i = 0; i < 6; i++) policies.push(await uploadedNotCompleted(`burst-${i}.png`, noise));
    let reading = 0;
    let peak = 0;
    const held: (() => void)[] = [];
    proxy.onRequest((req) => {
      // The sniff reads a range; the whole original is read as one stream, without one.
      const isWholeRead = req.method === 'GET' && req.headers.range === undefined;
      if (!isWholeRead || !keyOf(req).includes('/originals/')) return undefined;
      reading++;
      peak = Math.max(peak, reading);
      // Each read is slowed, so reads that are allowed to overlap do; one past the limit ends the wait.
      const hold = new Promise<void>((resolve) => {
        held.push(resolve);
        setTimeout(resolve, 150);
      });
      if (reading > WORKERS) for (const release of held.splice(0)) release();
      return { hold, done: () => reading-- };
    });
    const answers = await Promise.all(
      policies.map((p) => alice.postJson('/uploads/complete', { key: p.key })),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(6).fill(200));
    await t.settle();
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(WORKERS);
    const ids = await Promise.all(
      answers.map(async (a) => ((await a.json()) as { imageId: string }).imageId),
    );
    const states = await t.services.database.q
      .selectFrom('images')
      .select('state')
      .where('id', 'in', ids)
      .execute();
    expect(states.map((r) => r.state)).toEqual(Array(6).fill('ready'));
  });
});
