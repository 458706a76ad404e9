import { randomBytes } from 'node:crypto';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDatabase } from '../src/db/database.js';
import { createServices } from '../src/services/index.js';
import { POLICY_CLOCK_MARGIN_MS, POLICY_TTL_SECONDS } from '../src/services/pending-uploads.js';
import { PART_BYTES, partPlan } from '../src/services/upload-parts.js';
import { type Client, makeTestApp, signUp, signUpWithRole, type TestApp } from './support/app.js';
import { noisyPng } from './support/images.js';

const MiB = 1024 * 1024;

interface Started {
  key: string;
  partBytes: number;
  count: number;
}

/** What upload.js does with a large file: start, a URL per part and a PUT of it, then finish. */
async function start(client: Client, size: number, extra: Record<string, unknown> = {}) {
  return client.postJson('/uploads/parts/start', { name: 'big.png', size, type: 'image/png', ...extra });
}

async function started(client: Client, size: number, extra: Record<string, unknown> = {}) {
  const res = await start(client, size, extra);
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as Started;
}

async function partUrl(client: Client, key: string, part: number) {
  const res = await client.postJson('/uploads/parts/url', { key, part });
  expect(res.status, await res.clone().text()).toBe(200);
  return ((await res.json()) as { url: string }).url;
}

/** PUTs one part as a browser does: the URL is signed for its length. */
async function putPart(client: Client, s: Started, bytes: Buffer, n: number, body?: Buffer) {
  const url = await partUrl(client, s.key, n);
  const slice = body ?? bytes.subarray((n - 1) * s.partBytes, n * s.partBytes);
  return fetch(url, { method: 'PUT', body: new Uint8Array(slice) });
}

async function sendAll(client: Client, s: Started, bytes: Buffer) {
  for (let n = 1; n <= s.count; n++) {
    const res = await putPart(client, s, bytes, n);
    expect(res.status, await res.clone().text()).toBe(200);
  }
}

const finish = (client: Client, key: string) => client.postJson('/uploads/parts/finish', { key });

describe('uploads in parts', () => {
  let t: TestApp;
  let admin: Client;
  let n = 0;
  let big: Buffer;

  beforeAll(async () => {
    t = await makeTestApp({ env: { SIGNUP: 'open', SIGNUPS_PER_IP_PER_HOUR: '1000' } });
    admin = t.client();
    await signUp(admin, 'admin@example.com');
    big = await noisyPng(17 * MiB);
  });
  afterAll(() => t.close());

  async function member(quotaMib?: string) {
    const client = t.client();
    const email = `member${++n}@example.com`;
    await signUp(client, email);
    const id = (await t.user(email)).id;
    if (quotaMib) {
      const res = await admin.post(`/admin/users/${id}/quota`, { mib: quotaMib, images: '' });
      expect(res.status).toBe(303);
    }
    return { client, id };
  }

  it('cuts files into parts of 8 MiB, larger ones into larger parts, never more than 10,000', () => {
    expect(partPlan(17 * MiB)).toEqual({ partBytes: PART_BYTES, count: 3 });
    expect(partPlan(PART_BYTES)).toEqual({ partBytes: PART_BYTES, count: 1 });
    const huge = partPlan(200 * 1024 * MiB);
    expect(huge.count).toBeLessThanOrEqual(10_000);
    expect(huge.partBytes * huge.count).toBeGreaterThanOrEqual(200 * 1024 * MiB);
  });

  it('sends a 17 MiB image in three parts, joins them and makes one image of the same bytes', async () => {
    const { client, id } = await member();
    const s = await started(client, big.length);
    expect(s.count).toBe(3);
    expect(s.key.startsWith(`users/${id}/uploads/`)).toBe(true);
    await sendAll(client, s, big);
    const kept = await partUrl(client, s.key, 1);
    const [first, again] = await Promise.all([finish(client, s.key), finish(client, s.key)]);
    expect(first.status, await first.clone().text()).toBe(200);
    expect(again.status, await again.clone().text()).toBe(200);
    const done = (await first.json()) as { imageId: string; url: string };
    expect(((await again.json()) as { imageId: string }).imageId).toBe(done.imageId);
    expect(await t.count('images', `owner_id = '${id}'`)).toBe(1);
    await t.settle();
    const user = await t.user(`member${n}@example.com`);
    const image = await t.services.images.getForUser(user, done.imageId);
    expect(image.bytes).toBe(big.length);
    expect(image.state).toBe('ready');
    expect(image.title).toBe('big');
    const original = await t.services.storage.getRange(image.originalKey, 0, big.length - 1);
    expect(Buffer.from(original).equals(big)).toBe(true);
    // Once joined, a part's URL writes nothing (the bucket has no such upload) and none is signed.
    const replay = await fetch(kept, { method: 'PUT', body: new Uint8Array(big.subarray(0, s.partBytes)) });
    expect(replay.status).toBe(404);
    expect((await client.postJson('/uploads/parts/url', { key: s.key, part: 1 })).status).toBe(409);
    // Finishing again is the same image, not a second one.
    const third = await finish(client, s.key);
    expect(((await third.json()) as { imageId: string }).imageId).toBe(done.imageId);
    expect(await t.count('images', `owner_id = '${id}'`)).toBe(1);
  });

  it('replaces an image’s file in parts: the same image, the new bytes', async () => {
    const { client, id } = await member();
    const small = await sharp({ create: { width: 40, height: 30, channels: 3, background: '#c33' } })
      .png()
      .toBuffer();
    const first = await started(client, small.length);
    await sendAll(client, first, small);
    const made = await finish(client, first.key);
    const { imageId } = (await made.json()) as { imageId: string };
    const s = await started(client, big.length, { replaces: imageId });
    await sendAll(client, s, big);
    const done = await finish(client, s.key);
    expect(done.status, await done.clone().text()).toBe(200);
    expect(await done.json()).toMatchObject({ imageId, replaced: true });
    expect(await t.count('images', `owner_id = '${id}'`)).toBe(1);
    await t.settle();
    const image = await t.services.images.getForUser(await t.user(`member${n}@example.com`), imageId);
    expect(image.bytes).toBe(big.length);
    // Someone else's image is not theirs to replace, in parts or not.
    const other = await member();
    expect((await start(other.client, big.length, { replaces: imageId })).status).toBe(404);
  });

  it('signs each part for its exact length: a longer or shorter body is refused by the bucket', async () => {
    const { client } = await member();
    const s = await started(client, 9 * MiB);
    expect(s.count).toBe(2);
    const bytes = randomBytes(9 * MiB);
    const longer = await putPart(client, s, bytes, 2, randomBytes(MiB + 1));
    expect(longer.status).toBe(403);
    const shorter = await putPart(client, s, bytes, 1, randomBytes(PART_BYTES - 1));
    expect(shorter.status).toBe(403);
    // Chunked, with no length at all: refused too.
    const url = await partUrl(client, s.key, 2);
    const chunked = await fetch(url, {
      method: 'PUT',
      body: new ReadableStream({
        start(c) {
          c.enqueue(new Uint8Array(randomBytes(MiB)));
          c.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(403);
    expect(await t.services.storage.listParts(s.key, await multipartIdOf(s.key))).toEqual([]);
  });

  async function multipartIdOf(key: string): Promise<string> {
    const row = await t.services.database.q
      .selectFrom('pending_uploads')
      .select('multipart_id')
      .where('key', '=', key)
      .executeTakeFirst();
    if (!row?.multipart_id) throw new Error(`no multipart upload for ${key}`);
    return row.multipart_id;
  }

  it('joins only when every part arrived; says which is missing; then finishes once it is sent', async () => {
    const { client, id } = await member();
    const s = await started(client, big.length);
    expect((await putPart(client, s, big, 1)).status).toBe(200);
    expect((await putPart(client, s, big, 3)).status).toBe(200);
    const early = await finish(client, s.key);
    expect(early.status).toBe(400);
    expect(await early.text()).toContain('Part 2 of 3');
    expect(await t.count('images', `owner_id = '${id}'`)).toBe(0);
    expect((await putPart(client, s, big, 2)).status).toBe(200);
    const done = await finish(client, s.key);
    expect(done.status, await done.clone().text()).toBe(200);
    expect(await t.count('images', `owner_id = '${id}'`)).toBe(1);
  });

  it('refuses part numbers outside the file, and other people’s uploads', async () => {
    const { client } = await member();
    const other = await member();
    const s = await started(client, 9 * MiB);
    for (const part of [0, 3, -1, 1.5]) {
      const res = await client.postJson('/uploads/parts/url', { key: s.key, part });
      expect(res.status, String(part)).toBe(400);
    }
    expect((await client.postJson('/uploads/parts/url', { key: s.key, part: '1' })).status).toBe(400);
    expect((await other.client.postJson('/uploads/parts/url', { key: s.key, part: 1 })).status).toBe(404);
    expect((await finish(other.client, s.key)).status).toBe(404);
    expect((await admin.postJson('/uploads/parts/url', { key: s.key, part: 1 })).status).toBe(404);
    expect((await client.postJson('/uploads/parts/url', { key: '../x', part: 1 })).status).toBe(404);
    // Signed out: sent to sign in, nothing signed.
    expect((await t.client().postJson('/uploads/parts/url', { key: s.key, part: 1 })).status).toBe(303);
    expect((await start(t.client(), MiB)).status).toBe(303);
    // A viewer starts nothing.
    const viewer = await signUpWithRole(t, admin, `viewer${++n}@example.com`, 'viewer');
    expect((await start(viewer, MiB)).status).toBe(403);
  });

  it('holds the quota for the whole file from the start, also when many start at once', async () => {
    const { client, id } = await member('40');
    const results = await Promise.all(Array.from({ length: 5 }, () => start(client, 17 * MiB)));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 413, 413, 413]);
    expect(await t.count('pending_uploads', `owner_id = '${id}' AND multipart_id IS NOT NULL`)).toBe(2);
    // Larger than the upload limit: refused before anything starts.
    expect((await start(client, t.config.maxUploadBytes + 1)).status).toBe(413);
  });

  it('gives up a cancelled upload: its parts go at once and no URL is signed for it', async () => {
    const { client } = await member();
    const s = await started(client, 9 * MiB);
    const bytes = randomBytes(9 * MiB);
    expect((await putPart(client, s, bytes, 1)).status).toBe(200);
    const multipartId = await multipartIdOf(s.key);
    const abandoned = await client.postJson('/uploads/abandon', { key: s.key });
    expect(abandoned.status).toBe(204);
    expect(await t.services.storage.listParts(s.key, multipartId)).toBeNull();
    expect((await client.postJson('/uploads/parts/url', { key: s.key, part: 2 })).status).toBe(409);
    expect((await finish(client, s.key)).status).toBe(404);
  });

  it('drops the parts of a deleted account’s uploads: their URLs write nothing more', async () => {
    const { client, id } = await member();
    const s = await started(client, 9 * MiB);
    const bytes = randomBytes(9 * MiB);
    expect((await putPart(client, s, bytes, 1)).status).toBe(200);
    const signed = await partUrl(client, s.key, 2);
    const multipartId = await multipartIdOf(s.key);
    const gone = await admin.post(`/admin/users/${id}/delete`, { confirm: `member${n}@example.com` });
    expect(gone.status).toBe(303);
    expect(await t.services.storage.listParts(s.key, multipartId)).toBeNull();
    const late = await fetch(signed, { method: 'PUT', body: new Uint8Array(bytes.subarray(PART_BYTES)) });
    expect(late.status).toBe(404);
  });

  it('settles an expired upload in parts even when the bucket refuses to abort it, and says so', async () => {
    const { client, id } = await member('20');
    const s = await started(client, 17 * MiB);
    // Full: the upload holds 17 of the 20 MiB.
    expect((await start(client, 9 * MiB)).status).toBe(413);
    t.advance(POLICY_TTL_SECONDS * 1000 + POLICY_CLOCK_MARGIN_MS + 1000);
    const refusing = {
      ...t.services.storage,
      abortMultipart: () =>
        Promise.reject(Object.assign(new Error('Access Denied'), { name: 'AccessDenied' })),
    };
    const database = await connectDatabase(t.databaseTarget);
    try {
      const other = createServices({ database, storage: refusing, clock: t.now, config: t.config });
      const report = await other.uploadSweeper.sweep({ apply: true });
      expect(report.expired).toContain(s.key);
      // (Other members' uploads from the tests before are swept too.)
      expect(report.skipped).toContainEqual({
        key: s.key,
        reason: 'parts not aborted: AccessDenied: Access Denied',
      });
    } finally {
      await database.close();
    }
    // Its room in the quota is free again.
    expect(await t.count('pending_uploads', `owner_id = '${id}'`)).toBe(0);
    expect((await start(client, 9 * MiB)).status).toBe(200);
  });

  it('keeps a slow upload alive while it asks for parts; the sweep drops one left behind', async () => {
    const { client } = await member();
    const s = await started(client, 9 * MiB);
    const bytes = randomBytes(9 * MiB);
    expect((await putPart(client, s, bytes, 1)).status).toBe(200);
    const multipartId = await multipartIdOf(s.key);
    // 14 minutes later the next part moves the row's expiry on: the sweep leaves it alone.
    t.advance(14 * 60_000);
    await partUrl(client, s.key, 2);
    t.advance(POLICY_CLOCK_MARGIN_MS + 2 * 60_000);
    await t.services.uploadSweeper.sweep({ apply: true });
    expect(await t.services.storage.listParts(s.key, multipartId)).toHaveLength(1);
    // Then its browser goes: once the last URL has expired, the sweep drops the parts and the row.
    t.advance(POLICY_TTL_SECONDS * 1000);
    const report = await t.services.uploadSweeper.sweep({ apply: true });
    expect(report.expired).toContain(s.key);
    expect(await t.services.storage.listParts(s.key, multipartId)).toBeNull();
    expect(await t.count('pending_uploads', `key = '${s.key}'`)).toBe(0);
    expect((await finish(client, s.key)).status).toBe(404);
  });
});
