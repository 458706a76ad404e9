import { randomBytes } from 'node:crypto';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatBytes } from '../src/format.js';
import { POLICY_CLOCK_MARGIN_MS, POLICY_TTL_SECONDS, uploadKeyOf } from '../src/services/pending-uploads.js';
import { MAX_OPEN_UPLOADS } from '../src/services/uploads.js';
import type { Client } from './support/app.js';
import { makeTestApp, signUp, type TestApp } from './support/app.js';
import { fieldValue, hiddenForm } from './support/html.js';
import { makePng } from './support/images.js';
import {
  expectBucketMatchesRows,
  type Policy,
  postToBucket,
  upload,
  uploadWithJs,
} from './support/uploads.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const PAST_EXPIRY_MS = POLICY_TTL_SECONDS * 1000 + POLICY_CLOCK_MARGIN_MS + 1000;

/** A PNG of about `bytes` bytes: random pixels do not compress. */
const noisyPng = (bytes: number) => {
  const side = Math.round(Math.sqrt(bytes / 3));
  return sharp(randomBytes(side * side * 3), { raw: { width: side, height: side, channels: 3 } })
    .png()
    .toBuffer();
};

/** The staging key an upload page's form names. */
const formKeyOf = (html: string) => fieldValue(html, 'key', '#upload-form') as string;

const rangeOf = (policy: Policy) =>
  (JSON.parse(Buffer.from(policy.fields.Policy ?? '', 'base64').toString()).conditions as unknown[]).find(
    (c) => Array.isArray(c) && c[0] === 'content-length-range',
  );

describe('quotas under concurrency and open uploads', () => {
  let t: TestApp;
  let admin: Client;
  let n = 0;

  beforeAll(async () => {
    // A fresh member per test, all signing up from one address: lift the open sign-up throttle.
    t = await makeTestApp({ env: { SIGNUP: 'open', SIGNUPS_PER_IP_PER_HOUR: '1000' } });
    admin = t.client();
    await signUp(admin, 'admin@example.com');
  });
  afterAll(() => t.close());

  /** A fresh member per test, so quotas and open uploads never carry over. */
  async function member(quota: { mib?: string; images?: string } = {}) {
    const client = t.client();
    const email = `member${++n}@example.com`;
    await signUp(client, email);
    const id = (await t.user(email)).id;
    if (quota.mib || quota.images) await setQuota(id, quota);
    return { client, id };
  }

  async function setQuota(id: string, quota: { mib?: string; images?: string }) {
    const res = await admin.post(`/admin/users/${id}/quota`, {
      mib: quota.mib ?? '',
      images: quota.images ?? '',
    });
    expect(res.status).toBe(303);
  }

  async function presign(client: Client, body: Record<string, unknown>) {
    return client.postJson('/uploads/presign', { name: 'x.png', ...body });
  }

  async function uploadedNotCompleted(client: Client, bytes: Buffer): Promise<Policy> {
    const res = await presign(client, { size: bytes.length });
    expect(res.status, await res.clone().text()).toBe(200);
    const policy = (await res.json()) as Policy;
    expect((await postToBucket(policy, bytes, 'image/png', 'x.png')).status).toBe(201);
    return policy;
  }

  it('completes six uploads at once with 4 of 5 images used into exactly one image', async () => {
    const { client, id } = await member();
    for (let i = 0; i < 4; i++) await upload(client, await makePng(), `kept-${i}.png`);
    const png = await makePng(120, 80);
    const policies = await Promise.all(Array.from({ length: 6 }, () => uploadedNotCompleted(client, png)));
    await setQuota(id, { images: '5' });

    const answers = await Promise.all(
      policies.map((p) => client.postJson('/uploads/complete', { key: p.key })),
    );
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses).toEqual([200, 413, 413, 413, 413, 413]);
    for (const a of answers.filter((r) => r.status === 413)) {
      expect(((await a.json()) as { error: string }).error).toContain('limit of 5 images');
    }
    expect((await t.services.images.usage(id)).images).toBe(5);
    await expectBucketMatchesRows(t.services, id);
  });

  it('completes six uploads at once into a byte quota that holds one of them into exactly one image', async () => {
    const { client, id } = await member();
    const png = await makePng(140, 90);
    const policies = await Promise.all(Array.from({ length: 6 }, () => uploadedNotCompleted(client, png)));
    await setQuota(id, { mib: ((png.length * 1.5) / MiB).toFixed(6) });

    const answers = await Promise.all(
      policies.map((p) => client.postJson('/uploads/complete', { key: p.key })),
    );
    expect(answers.map((a) => a.status).sort()).toEqual([200, 413, 413, 413, 413, 413]);
    for (const a of answers.filter((r) => r.status === 413)) {
      expect(((await a.json()) as { error: string }).error).toContain('storage quota');
    }
    expect(await t.services.images.usage(id)).toEqual({ images: 1, bytes: png.length, trashed: 0 });
    await expectBucketMatchesRows(t.services, id);
  });

  it('frees a cancelled upload’s room at once, and never lets it become an image', async () => {
    const { client, id } = await member({ mib: '1' });
    const file = randomBytes(900 * KiB);
    // Cancelled after its file arrived (its answer never came): the room stays taken until it is given up.
    const first = await uploadedNotCompleted(client, file);
    expect((await presign(client, { size: file.length })).status).toBe(413);
    expect((await client.postJson('/uploads/abandon', { key: first.key })).status).toBe(204);
    expect((await presign(client, { size: file.length })).status).toBe(200);
    // Given up means given up: completing it afterwards keeps nothing, twice over.
    expect((await client.postJson('/uploads/abandon', { key: first.key })).status).toBe(204);
    expect((await client.postJson('/uploads/complete', { key: first.key })).status).toBe(404);
    expect(await t.services.images.usage(id)).toEqual({ images: 0, bytes: 0, trashed: 0 });
    // Someone else's key, or none, is not theirs to give up.
    const other = await member();
    expect((await other.client.postJson('/uploads/abandon', { key: first.key })).status).toBe(404);
    expect((await client.postJson('/uploads/abandon', { key: 'users/x/uploads/y' })).status).toBe(404);
    expect((await client.postJson('/uploads/abandon', {})).status).toBe(404);
    // The sweep deletes what its policy wrote once the policy expired; an expired upload is the
    // sweep's, and giving it up then changes nothing.
    t.advance(PAST_EXPIRY_MS);
    const second = (await (await presign(client, { size: 10 })).json()) as Policy;
    t.advance(PAST_EXPIRY_MS);
    expect((await client.postJson('/uploads/abandon', { key: second.key })).status).toBe(204);
    expect(await t.count('pending_uploads', `key = '${second.key}' AND closed_at IS NULL`)).toBe(1);
    await t.services.uploadSweeper.sweep({ apply: true });
    expect(await t.services.storage.head(first.key)).toBeNull();
    await expectBucketMatchesRows(t.services, id);
  });

  it('counts given-up uploads among the open ones until their policies expire: presign and abandon cannot mint policies', async () => {
    const { client } = await member();
    for (let i = 0; i < MAX_OPEN_UPLOADS; i++) {
      const res = await presign(client, {});
      expect(res.status).toBe(200);
      const { key } = (await res.json()) as Policy;
      expect((await client.postJson('/uploads/abandon', { key })).status).toBe(204);
    }
    const refused = await presign(client, {});
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    t.advance(PAST_EXPIRY_MS);
    expect((await presign(client, {})).status).toBe(200);
  });

  it('shows members what they use against their quota on their account and upload pages', async () => {
    const { client, id } = await member();
    const account = async () => (await (await client.get('/account')).text()).replaceAll('&#39;', "'");
    expect(await account()).toContain('You use:</strong> 0 B · 0 images (no limit)');
    expect(await account()).not.toContain('<meter');
    await upload(client, await makePng(140, 90), 'one.png');
    await setQuota(id, { mib: '5', images: '10' });
    const { bytes } = await t.services.images.usage(id);
    const html = await account();
    expect(html).toContain(
      `You use:</strong> ${formatBytes(bytes)} of ${formatBytes(5 * MiB)} · 1 of 10 images`,
    );
    // A bar per limit, whose value a screen reader reads.
    expect(html).toContain(`<meter class="usage-bar" min="0" max="${5 * MiB}" value="${bytes}"`);
    expect(html).toContain('max="10" value="1"');
    const uploadPage = await (await client.get('/upload')).text();
    expect(uploadPage).toContain(`of ${formatBytes(5 * MiB)} · 1 of 10 images`);
    expect(uploadPage).toContain('id="upload-form"');
  });

  it('counts what posted but unfinished uploads could write: three 900 KiB files on a 1 MiB quota', async () => {
    const { client, id } = await member({ mib: '1' });
    const file = randomBytes(900 * KiB);
    const first = await uploadedNotCompleted(client, file);

    const second = await presign(client, { size: file.length });
    expect(second.status).toBe(413);
    expect(((await second.json()) as { error: string }).error).toContain('left of your storage quota');
    expect(rangeOf(first)).toEqual(['content-length-range', file.length, file.length]);
    // Without a size (an older script, or the plain form), the policy allows only what is left.
    const blind = await presign(client, {});
    expect(blind.status).toBe(200);
    const blindPolicy = (await blind.json()) as Policy;
    expect(rangeOf(blindPolicy)).toEqual(['content-length-range', 1, MiB - 900 * KiB]);
    const tooBig = await postToBucket(blindPolicy, file, 'image/png', 'x.png');
    expect(tooBig.status).toBe(400);
    expect(await tooBig.text()).toContain('EntityTooLarge');
    const third = await presign(client, {});
    expect(third.status).toBe(403);
    expect(((await third.json()) as { error: string }).error).toContain('quota is used up');
    // The upload page says why, with the numbers, instead of a bare refusal; it offers no form.
    const full = await client.get('/upload');
    expect(full.status).toBe(403);
    const fullPage = await full.text();
    expect(fullPage).toContain('<h1>Upload images</h1>');
    expect(fullPage).toContain('quota is used up');
    expect(fullPage).toContain(`You use:</strong> 0 B of ${formatBytes(MiB)} · 0 images`);
    expect(fullPage).not.toContain('id="upload-form"');

    // Once their policies expired, the sweep settles them: not an image, so the object goes.
    t.advance(PAST_EXPIRY_MS);
    const report = await t.services.uploadSweeper.sweep({ apply: true });
    expect(report.rejected).toContain(first.key);
    expect(report.expired).toContain(blindPolicy.key);
    expect(await t.services.storage.head(first.key)).toBeNull();
    expect(await t.count('pending_uploads', `owner_id = '${id}'`)).toBe(0);
    expect((await presign(client, { size: file.length })).status).toBe(200);
  });

  it('frees a finished upload’s room at once: three 300 KiB files of four fit a 1 MiB quota, as upload.js sends them', async () => {
    const { client, id } = await member({ mib: '1' });
    const files = await Promise.all([1, 2, 3, 4].map(() => noisyPng(300 * KiB)));
    const formKey = formKeyOf(await (await client.get('/upload')).text());
    // upload.js: the first file alone, through the page's own upload...
    const first = await presign(client, { size: (files[0] as Buffer).length, formKey });
    expect(first.status, await first.clone().text()).toBe(200);
    const firstPolicy = (await first.json()) as Policy;
    expect(uploadKeyOf(firstPolicy.key)).toBe(uploadKeyOf(formKey));
    expect((await postToBucket(firstPolicy, files[0] as Buffer, 'image/png', 'one.png')).status).toBe(201);
    expect((await client.postJson('/uploads/complete', { key: firstPolicy.key })).status).toBe(200);
    // ...then the others two at a time: the finished one holds only its image's bytes.
    const [second, third] = await Promise.all(
      [files[1], files[2]].map(async (file) => {
        const res = await presign(client, { size: (file as Buffer).length });
        expect(res.status, await res.clone().text()).toBe(200);
        const policy = (await res.json()) as Policy;
        expect((await postToBucket(policy, file as Buffer, 'image/png', 'x.png')).status).toBe(201);
        return policy;
      }),
    );
    const fourth = await presign(client, { size: (files[3] as Buffer).length });
    expect(fourth.status).toBe(413);
    expect(((await fourth.json()) as { error: string }).error).toContain('left of your storage quota');
    for (const policy of [second, third] as Policy[]) {
      expect((await client.postJson('/uploads/complete', { key: policy.key })).status).toBe(200);
    }
    expect((await t.services.images.usage(id)).images).toBe(3);
    await expectBucketMatchesRows(t.services, id);
  });

  it('bounds what finished uploads’ policies can still write: a refused file’s policy replayed, upload after upload', async () => {
    const { client, id } = await member({ mib: '1' });
    const junk = randomBytes(MiB - 4 * KiB); // not an image: each completion is refused
    let parked = 0;
    for (let i = 0; i < 4; i++) {
      const res = await presign(client, {}); // no size: the policy allows what is left of the quota
      if (res.status !== 200) {
        expect(res.status).toBe(403);
        expect(((await res.json()) as { error: string }).error).toContain('1.0 MiB held for');
        break;
      }
      const policy = (await res.json()) as Policy;
      expect((await postToBucket(policy, junk, 'image/png', 'x.png')).status).toBe(201);
      expect((await client.postJson('/uploads/complete', { key: policy.key })).status).toBe(415);
      // Finished, its policy still writes its staging key until it expires.
      expect((await postToBucket(policy, junk, 'image/png', 'x.png')).status).toBe(201);
      parked++;
    }
    // What finished uploads left is free up to the quota, not beyond: each loop used to park 1 MiB more.
    expect(parked).toBe(2);
    const listed = (await t.services.storage.list(`users/${id}/`)).keys;
    expect(listed.reduce((sum, k) => sum + k.size, 0)).toBeLessThanOrEqual(2 * MiB);
    t.advance(PAST_EXPIRY_MS);
    await t.services.uploadSweeper.sweep({ apply: true });
    await expectBucketMatchesRows(t.services, id);
    expect((await presign(client, {})).status).toBe(200);
  });

  it('keeps one plain-form upload per page however often the page is opened, from here or from another site', async () => {
    // Each visit used to hold a new upload: the third would have met this image limit.
    const { client, id } = await member({ images: '2' });
    const keys = new Set<string>();
    for (let i = 0; i < MAX_OPEN_UPLOADS + 5; i++) {
      const headers: Record<string, string> = i % 2 ? { 'Sec-Fetch-Site': 'cross-site' } : {};
      const page = await client.get('/upload', headers);
      expect(page.status, `visit ${i}`).toBe(200);
      keys.add(formKeyOf(await page.text()));
    }
    expect(keys.size).toBe(1);
    expect(await t.count('pending_uploads', `owner_id = '${id}'`)).toBe(1);
    // The page's upload still leaves room for upload.js to take it over...
    expect((await presign(client, { size: 100, formKey: [...keys][0] })).status).toBe(200);
    // ...and a replacement page has an upload of its own, kept once per image too.
    const imageId = await upload(client, await makePng(), 'kept.png');
    const replaceKeys = new Set<string>();
    for (let i = 0; i < 3; i++) {
      replaceKeys.add(formKeyOf(await (await client.get(`/images/${imageId}/replace`)).text()));
    }
    expect(replaceKeys.size).toBe(1);
    expect([...replaceKeys][0]).not.toBe([...keys][0]);
  });

  it('tells a second file posted through the same page form after the first was kept that it was not kept', async () => {
    const { client, id } = await member();
    const html = await (await client.get('/upload')).text();
    const { action, fields: hidden } = hiddenForm(html, '#upload-form');
    // The browser's plain form post, then the redirect it follows back to the app.
    const submit = async (png: Buffer) => {
      const form = new FormData();
      for (const [name, value] of hidden) form.append(name, name === 'Content-Type' ? 'image/png' : value);
      form.append('file', new Blob([new Uint8Array(png)], { type: 'image/png' }), 'photo.png');
      const stored = await fetch(action as string, { method: 'POST', body: form, redirect: 'manual' });
      expect(stored.status).toBe(303);
      const back = new URL(stored.headers.get('location') as string);
      return `${back.pathname}${back.search}`;
    };
    const firstPng = await makePng(120, 80);
    const firstReturn = await submit(firstPng);
    const kept = await client.get(firstReturn);
    expect(kept.status).toBe(303);
    // The same form again (another tab, say): the bucket takes the file, the app does not keep it.
    const again = await client.get(await submit(await makePng(90, 90)));
    expect(again.status).toBe(409);
    expect(await again.text()).toContain('was not kept');
    expect(await t.services.images.usage(id)).toEqual({ images: 1, bytes: firstPng.length, trashed: 0 });
    // Reloading the first file's return address still lands on the image it made.
    const reload = await client.get(firstReturn);
    expect(reload.headers.get('location')).toBe(kept.headers.get('location'));
    t.advance(PAST_EXPIRY_MS);
    const report = await t.services.uploadSweeper.sweep({ apply: true });
    expect(report.replaysDeleted).toHaveLength(1);
    await expectBucketMatchesRows(t.services, id);
  });

  it(`allows ${MAX_OPEN_UPLOADS} open uploads, then answers 429 with Retry-After until one finishes`, async () => {
    const { client } = await member();
    const policies: Policy[] = [];
    for (let i = 0; i < MAX_OPEN_UPLOADS; i++) {
      const res = await presign(client, {});
      expect(res.status).toBe(200);
      policies.push((await res.json()) as Policy);
    }
    const refused = await presign(client, {});
    expect(refused.status).toBe(429);
    const wait = Number(refused.headers.get('retry-after'));
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(POLICY_TTL_SECONDS);
    expect(((await refused.json()) as { error: string }).error).toContain('Too many uploads');
    expect((await client.get('/upload')).status).toBe(429);

    const one = policies[0] as Policy;
    expect((await postToBucket(one, await makePng(), 'image/png', 'x.png')).status).toBe(201);
    expect((await client.postJson('/uploads/complete', { key: one.key })).status).toBe(200);
    expect((await presign(client, {})).status).toBe(200);
  });

  it('lets no new upload start while images and unfinished uploads fill the image quota', async () => {
    const { client } = await member({ images: '2' });
    const a = await uploadedNotCompleted(client, await makePng());
    const b = await presign(client, {});
    expect(b.status).toBe(200);
    const c = await presign(client, {});
    expect(c.status).toBe(403);
    expect(((await c.json()) as { error: string }).error).toContain(
      'limit of 2 images, counting 2 uploads not finished yet',
    );
    expect((await client.postJson('/uploads/complete', { key: a.key })).status).toBe(200);
    expect((await presign(client, {})).status).toBe(403);
    // The unfinished one is given up after its policy expired: room again.
    t.advance(PAST_EXPIRY_MS);
    await t.services.uploadSweeper.sweep({ apply: true });
    expect((await presign(client, {})).status).toBe(200);
  });

  it('re-signs the upload page’s own reservation for upload.js’s first file instead of opening another', async () => {
    const { client, id } = await member({ mib: '1' });
    const html = await (await client.get('/upload')).text();
    const formKey = formKeyOf(html);
    // The plain form's key: the bucket puts the file's name under the upload's own prefix.
    expect(formKey).toMatch(new RegExp(`^users/${id}/uploads/[0-9a-f-]{36}/\\$\\{filename\\}$`));
    // The page holds the whole 1 MiB: a second policy has no room...
    const other = await presign(client, { size: 1000 });
    expect(other.status).toBe(403);
    expect(((await other.json()) as { error: string }).error).toContain(
      '1.0 MiB held for uploads not finished yet',
    );
    // ...but the page's own upload, taken over by upload.js, does.
    const png = await makePng(220, 120);
    const res = await presign(client, { size: png.length, formKey, name: 'taken-over.png' });
    expect(res.status).toBe(200);
    const policy = (await res.json()) as Policy;
    // The same upload (its prefix), under a fixed name: upload.js sends the file's name itself.
    expect(policy.key).toBe(`${uploadKeyOf(formKey)}file`);
    expect(rangeOf(policy)).toEqual(['content-length-range', png.length, png.length]);
    expect(await t.count('pending_uploads', `owner_id = '${id}'`)).toBe(1);
    expect((await postToBucket(policy, png, 'image/png', 'taken-over.png')).status).toBe(201);
    const done = await client.postJson('/uploads/complete', { key: policy.key });
    expect(done.status).toBe(200);
    const image = await t.services.images.getForUser(
      await t.user(`member${n}@example.com`),
      (await done.json()).imageId,
    );
    expect(image.title).toBe('taken-over');
    // A finished row is never re-signed: the same form key now gets an upload of its own.
    const later = await presign(client, { size: png.length, formKey });
    expect(later.status).toBe(200);
    expect(uploadKeyOf(((await later.json()) as Policy).key)).not.toBe(uploadKeyOf(formKey));
  });

  it('re-signs the page’s form on each visit for an hour at most, never past it, then opens another', async () => {
    const { client, id } = await member();
    const formOf = async (path = '/upload') => {
      const html = await (await client.get(path)).text();
      const { fields } = hiddenForm(html, '#upload-form');
      const policy = Object.fromEntries(fields) as Record<string, string>;
      const expiration = Date.parse(
        JSON.parse(Buffer.from(policy.Policy ?? '', 'base64').toString()).expiration,
      );
      return { key: uploadKeyOf(policy.key ?? ''), policyLeftMs: expiration - Date.now() };
    };
    const first = await formOf();
    const row = async () =>
      t.services.database.q
        .selectFrom('pending_uploads')
        .select(['created_at', 'expires_at'])
        .where('key', '=', first.key)
        .executeTakeFirstOrThrow();
    const { created_at: createdAt } = await row();
    // Reloads every 14 minutes: the same upload, its expiry (and its policies') never past an hour.
    for (let minutes = 14; minutes <= 42; minutes += 14) {
      t.advance(14 * 60_000);
      const again = await formOf();
      expect(again.key, `${minutes} min`).toBe(first.key);
      const { expires_at: expiresAt } = await row();
      expect(expiresAt).toBeLessThanOrEqual(createdAt + 60 * 60_000);
      // The policy never outlives its row (the bucket's clock is the real one: a second of slack).
      expect(again.policyLeftMs).toBeLessThanOrEqual(expiresAt - t.now() + 1000);
    }
    // 56 minutes in, less than 10 of its hour are left: the next visit opens another upload.
    t.advance(14 * 60_000);
    const later = await formOf();
    expect(later.key).not.toBe(first.key);
    expect(await t.count('pending_uploads', `owner_id = '${id}'`)).toBe(2);
  });

  it('gives ?new=1 (the way back from “this page has sent a file already”) a form without a file', async () => {
    const { client } = await member();
    const html = await (await client.get('/upload')).text();
    const form = hiddenForm(html, '#upload-form');
    const fields = Object.fromEntries(form.fields) as Record<string, string>;
    const key = uploadKeyOf(fields.key ?? '');
    // Its file arrived, and its browser never came back: visits still share that upload...
    const policy = { key: `${key}sent.png`, url: form.action as string, fields };
    const sent = new FormData();
    for (const [k, v] of Object.entries(fields)) sent.append(k, v);
    sent.append('file', new Blob([new Uint8Array(await makePng())]), 'sent.png');
    expect((await fetch(policy.url, { method: 'POST', body: sent, redirect: 'manual' })).status).toBe(303);
    expect(
      uploadKeyOf(fieldValue(await (await client.get('/upload')).text(), 'key', '#upload-form') ?? ''),
    ).toBe(key);
    // ...but ?new=1 gets one of its own, and reloading it keeps that one (it has no file).
    const fresh = uploadKeyOf(
      fieldValue(await (await client.get('/upload?new=1')).text(), 'key', '#upload-form') ?? '',
    );
    expect(fresh).not.toBe(key);
    const reloaded = uploadKeyOf(
      fieldValue(await (await client.get('/upload?new=1')).text(), 'key', '#upload-form') ?? '',
    );
    expect(reloaded).toBe(fresh);
  });

  it('never re-signs someone else’s form key', async () => {
    const { client: mallory } = await member();
    const { client: victim } = await member({ mib: '1' });
    const html = await (await victim.get('/upload')).text();
    const formKey = formKeyOf(html);
    const res = await presign(mallory, { size: 100, formKey });
    expect(res.status).toBe(200);
    const key = ((await res.json()) as Policy).key;
    expect(uploadKeyOf(key)).not.toBe(uploadKeyOf(formKey));
    expect(key.startsWith(uploadKeyOf(formKey))).toBe(false);
  });

  it('refuses a size that is not a positive whole number, or over the upload limit', async () => {
    const { client } = await member();
    for (const size of [0, -5, 1.5, '12', 2 ** 60]) {
      const res = await presign(client, { size });
      expect(res.status, String(size)).toBe(400);
    }
    const huge = await presign(client, { size: t.config.maxUploadBytes + 1 });
    expect(huge.status).toBe(413);
    expect(((await huge.json()) as { error: string }).error).toContain('upload limit');
  });

  it('keeps replacing an image within the quota: it frees the bytes of the file it replaces', async () => {
    const png = await makePng(100, 100);
    const { client } = await member({ mib: ((png.length * 3) / MiB).toFixed(6) });
    const id = await upload(client, png, 'a.png');
    const { done } = await uploadWithJs(client, png, 'b.png', 'image/png', id);
    expect(done.status).toBe(200);
  });
});
