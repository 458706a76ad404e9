import sharp from 'sharp';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { POLICY_CLOCK_MARGIN_MS, POLICY_TTL_SECONDS, uploadKeyOf } from '../src/services/pending-uploads.js';
import type { Client, TestApp } from './support/app.js';
import { hiddenForm } from './support/html.js';
import { makeJpeg, makePng, SVG } from './support/images.js';
import { keyOf, makeInterceptedApp } from './support/store-interceptor.js';
import {
  expectBucketMatchesRows,
  type Policy,
  postToBucket,
  untilOriginalsStored,
  uploadWithJs,
} from './support/uploads.js';

const PAST_EXPIRY_MS = POLICY_TTL_SECONDS * 1000 + POLICY_CLOCK_MARGIN_MS + 1000;

/** The name the tests' plain-form posts give their file; the bucket stores it by this name under the upload's prefix. */
const FORM_FILE = 'from-a-tab.jpg';

/** The upload page's form as a browser without JavaScript posts it: its hidden fields and the file. */
async function pageForm(client: Client, path = '/upload'): Promise<Policy> {
  const html = await (await client.get(path)).text();
  const form = hiddenForm(html, '#upload-form');
  const url = form.action;
  const fields: Record<string, string> = Object.fromEntries(form.fields);
  // The form's own "image/unknown" is the browser's to send; postToBucket adds the file's type.
  delete fields['Content-Type'];
  expect(url).toBeTruthy();
  // The bucket puts the file's name where the key says ${filename}.
  return { key: (fields.key ?? '').replace('$' + '{filename}', FORM_FILE), url: url as string, fields };
}

/** Posts the form fields with the file, as the browser does, and follows nothing: the bucket's 303. */
async function postForm(policy: Policy, bytes: Buffer, type: string, name = FORM_FILE) {
  const form = new FormData();
  for (const [k, v] of Object.entries(policy.fields)) form.append(k, v);
  form.append('Content-Type', type);
  form.append('file', new Blob([new Uint8Array(bytes)], { type }), name);
  return fetch(policy.url, { method: 'POST', body: form, redirect: 'manual' });
}

describe('a POST policy replayed after its upload completed', () => {
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

  async function originalBytes(imageId: string): Promise<Buffer> {
    await t.settle(); // an original can be downloaded once processed
    const download = await alice.get(`/images/${imageId}/download`);
    expect(download.status).toBe(303);
    const file = await fetch(download.headers.get('location') as string);
    expect(file.status).toBe(200);
    return Buffer.from(await file.arrayBuffer());
  }

  it('keeps the verified JPEG byte for byte when the plain form is posted again with a 3 MB SVG', async () => {
    const jpeg = await makeJpeg(640, 480);
    const policy = await pageForm(alice);
    const stored = await postForm(policy, jpeg, 'image/jpeg');
    expect(stored.status).toBe(303);
    const completeUrl = new URL(stored.headers.get('location') as string);
    const done = await alice.get(completeUrl.pathname + completeUrl.search);
    expect(done.status).toBe(303);
    const imagePath = done.headers.get('location') as string;
    const imageId = imagePath.match(/^\/images\/([a-z0-9]+)\?uploaded=1$/)?.[1] as string;
    await untilOriginalsStored(t);

    // The replay: the same fields within their 15 minutes. The bucket accepts it, as S3 would.
    const svg = Buffer.concat([SVG, Buffer.alloc(3_000_000, 0x20)]);
    const replay = await postForm(policy, svg, 'image/svg+xml');
    expect(replay.status).toBe(303);
    // Under another name it lands beside the file, under the upload's prefix, as S3 allows (the
    // embedded store keeps one file per form: see packages/s3-store/test/post-filename.test.ts).
    const beside = await postForm(policy, svg, 'image/svg+xml', 'another.svg');
    expect(beside.status).toBe(303);
    const besideKey = `${uploadKeyOf(policy.key)}another.svg`;
    expect(await t.services.storage.head(besideKey)).not.toBeNull();
    // Its redirect makes no second image: the upload has its file.
    const besideBack = new URL(beside.headers.get('location') as string);
    expect(besideBack.searchParams.get('key')).toBe(besideKey);
    const refused = await alice.get(besideBack.pathname + besideBack.search);
    expect(refused.status).toBe(409);
    expect(await t.count('images')).toBe(1);

    expect((await originalBytes(imageId)).equals(jpeg)).toBe(true);
    // The browser's redirect may repeat: it answers with the same image, and verifies nothing again.
    const again = await alice.get(completeUrl.pathname + completeUrl.search);
    expect(again.headers.get('location')).toBe(imagePath);
    const image = await t.services.images.getForUser(await t.user('alice@example.com'), imageId);
    expect([image.bytes, image.contentType]).toEqual([jpeg.length, 'image/jpeg']);
    expect(image.originalKey).toMatch(new RegExp(`^users/${aliceId}/originals/`));
    expect(policy.key).toMatch(new RegExp(`^users/${aliceId}/uploads/`));
    expect(await t.services.storage.head(policy.key)).not.toBeNull();

    // Once the policy has expired (and the margin for the bucket's clock), the sweep deletes the replay.
    t.advance(PAST_EXPIRY_MS);
    const report = await t.services.uploadSweeper.sweep({ apply: true });
    expect(report.replaysDeleted.sort()).toEqual([besideKey, policy.key]);
    expect(await t.services.storage.head(policy.key)).toBeNull();
    expect(await t.services.storage.head(besideKey)).toBeNull();
    expect(await t.count('pending_uploads')).toBe(0);
    expect((await originalBytes(imageId)).equals(jpeg)).toBe(true);
    await expectBucketMatchesRows(t.services, aliceId);
  });

  it('keeps the verified file when upload.js’s policy is replayed, and for a replacement too', async () => {
    const jpeg = await makeJpeg(400, 300);
    const first = await uploadWithJs(alice, jpeg, 'photo.jpg', 'image/jpeg');
    expect(first.done.status).toBe(200);
    const { imageId } = (await first.done.json()) as { imageId: string };
    await untilOriginalsStored(t);
    // upload.js's policy allows exactly the file's size: the replay is an SVG padded to it.
    const svg = Buffer.concat([SVG, Buffer.alloc(jpeg.length - SVG.length, 0x20)]);
    expect((await postToBucket(first.policy, svg, 'image/svg+xml', 'x.svg')).status).toBe(201);
    expect((await originalBytes(imageId)).equals(jpeg)).toBe(true);

    const png = await makePng(200, 100);
    const second = await uploadWithJs(alice, png, 'new.png', 'image/png', imageId);
    expect(second.done.status).toBe(200);
    expect(((await second.done.json()) as { replaced: boolean }).replaced).toBe(true);
    await untilOriginalsStored(t);
    const padded = Buffer.concat([SVG, Buffer.alloc(png.length - SVG.length, 0x20)]);
    expect((await postToBucket(second.policy, padded, 'image/svg+xml', 'x.svg')).status).toBe(201);
    expect((await originalBytes(imageId)).equals(png)).toBe(true);
    const again = await alice.postJson('/uploads/complete', { key: second.policy.key });
    expect(await again.json()).toMatchObject({ imageId, replaced: true });

    t.advance(PAST_EXPIRY_MS);
    const report = await t.services.uploadSweeper.sweep({ apply: true });
    expect(report.replaysDeleted.sort()).toEqual([first.policy.key, second.policy.key].sort());
    expect((await originalBytes(imageId)).equals(png)).toBe(true);
    await expectBucketMatchesRows(t.services, aliceId);
  });

  it('fails the image, keeping nothing unverified, when a replay lands before upload.js’s answered upload is copied into place', async () => {
    const jpeg = await makeJpeg(500, 400);
    const presign = await alice.postJson('/uploads/presign', { name: 'late.jpg', size: jpeg.length });
    const policy = (await presign.json()) as Policy;
    expect((await postToBucket(policy, jpeg, 'image/jpeg', 'late.jpg')).status).toBe(201);
    // Hold the copy the completion starts once it has answered, until the replay has landed.
    let reached!: () => void;
    const isReached = new Promise<void>((resolve) => {
      reached = resolve;
    });
    let release!: () => void;
    const hold = new Promise<void>((resolve) => {
      release = resolve;
    });
    proxy.onRequest((req) => {
      if (!req.headers['x-amz-copy-source']) return undefined;
      reached();
      return { hold };
    });
    const done = await alice.postJson('/uploads/complete', { key: policy.key });
    expect(done.status).toBe(200);
    const { imageId } = (await done.json()) as { imageId: string };
    await isReached;
    proxy.onRequest(() => undefined);
    // The policy allows exactly the file's size: the replay is an SVG padded to it.
    const svg = Buffer.concat([SVG, Buffer.alloc(jpeg.length - SVG.length, 0x20)]);
    expect((await postToBucket(policy, svg, 'image/svg+xml', 'x.svg')).status).toBe(201);
    release();

    await t.settle();
    const image = await t.services.images.getForUser(await t.user('alice@example.com'), imageId);
    expect(image.state).toBe('failed');
    expect(image.failure).toContain('not kept');
    // Nothing unverified became the image: no original, no copies, and the download says so.
    const listed = (await t.services.storage.list(`users/${aliceId}/`)).keys.map((k) => k.key);
    expect(
      listed.filter((k) => k === image.originalKey || k === image.thumbKey || k === image.displayKey),
    ).toEqual([]);
    const download = await alice.get(`/images/${imageId}/download`);
    expect(download.status).toBe(404);
    expect(await download.text()).toContain('not in the bucket');
    // The replay goes with the sweep, as any replay does.
    t.advance(PAST_EXPIRY_MS);
    expect((await t.services.uploadSweeper.sweep({ apply: true })).replaysDeleted).toEqual([policy.key]);
    expect(await t.services.storage.head(policy.key)).toBeNull();
  });
});

describe('a second file sent through the same page form (another tab) around the first one’s completion', () => {
  let t: TestApp;
  let proxy: Awaited<ReturnType<typeof makeInterceptedApp>>['proxy'];
  let bob: Client;
  let bobId: string;

  let close: () => Promise<void>;

  beforeAll(async () => {
    ({ t, proxy, client: bob, userId: bobId, close } = await makeInterceptedApp('bob@example.com'));
  });
  beforeEach(() => proxy.onRequest(() => undefined));
  afterAll(() => close());

  /** The bucket's redirect back to the app, as the browser follows it. */
  async function storedThrough(policy: Policy, bytes: Buffer, type: string, name?: string): Promise<string> {
    const stored = await postForm(policy, bytes, type, name);
    expect(stored.status).toBe(303);
    const back = new URL(stored.headers.get('location') as string);
    return back.pathname + back.search;
  }

  async function originalOf(imagePath: string): Promise<Buffer> {
    await t.settle(); // an original can be downloaded once processed
    const download = await bob.get(`${imagePath.split('?')[0]}/download`);
    expect(download.status).toBe(303);
    return Buffer.from(await (await fetch(download.headers.get('location') as string)).arrayBuffer());
  }

  /** A gate the proxy holds one request at: `reached` once it arrives, `open()` lets it through. */
  function gate() {
    let open!: () => void;
    let arrived!: () => void;
    const reached = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    const hold = new Promise<void>((resolve) => {
      open = resolve;
    });
    return { hold, reached, arrived, open };
  }

  it('keeps the file a redirect names: one replaced before its completion read it is told so, and the other kept', async () => {
    const first = await makePng(160, 90);
    const second = await makePng(90, 160);
    // Two tabs of the upload page: one form, one staging key.
    const tabA = await pageForm(bob);
    const tabB = await pageForm(bob);
    expect(tabB.key).toBe(tabA.key);
    const backA = await storedThrough(tabA, first, 'image/png');
    // The first redirect's completion reaches its read of the file; the second file lands before it.
    const read = gate();
    proxy.onRequest((req) => {
      if (req.method !== 'GET' || keyOf(req) !== tabA.key) return undefined;
      read.arrived();
      return { hold: read.hold };
    });
    const imagesBefore = await t.count('images', `owner_id = '${bobId}'`);
    const completingA = bob.get(backA);
    await read.reached;
    proxy.onRequest(() => undefined);
    const backB = await storedThrough(tabB, second, 'image/png');
    // The second redirect reaches the service while the first is in flight: it waits for it.
    const completingB = bob.get(backB);
    read.open();

    const [doneA, doneB] = await Promise.all([completingA, completingB]);
    expect(doneA.status).toBe(409);
    expect(await doneA.text()).toContain('not kept');
    expect(doneB.status).toBe(303);
    expect((await originalOf(doneB.headers.get('location') as string)).equals(second)).toBe(true);
    expect(await t.count('images', `owner_id = '${bobId}'`)).toBe(imagesBefore + 1);
  });

  it('keeps the file a redirect names: one replaced before its completion copied it is told so, not swapped for the other', async () => {
    const first = await makePng(160, 90);
    const second = await makePng(90, 160);
    // Two tabs of the upload page: one form, one staging key.
    const tabA = await pageForm(bob);
    const tabB = await pageForm(bob);
    expect(tabB.key).toBe(tabA.key);
    const imagesBefore = await t.count('images', `owner_id = '${bobId}'`);
    const backA = await storedThrough(tabA, first, 'image/png');
    // The first redirect's completion reaches the copy; the second file lands before it is made.
    const copy = gate();
    proxy.onRequest((req) => {
      if (!req.headers['x-amz-copy-source']) return undefined;
      copy.arrived();
      return { hold: copy.hold };
    });
    const completingA = bob.get(backA);
    await copy.reached;
    proxy.onRequest(() => undefined);
    const backB = await storedThrough(tabB, second, 'image/png');
    copy.open();

    const doneA = await completingA;
    expect(doneA.status).toBe(409);
    expect(await doneA.text()).toContain('not kept');
    const doneB = await bob.get(backB);
    expect(doneB.status).toBe(303);
    expect((await originalOf(doneB.headers.get('location') as string)).equals(second)).toBe(true);
    expect(await t.count('images', `owner_id = '${bobId}'`)).toBe(imagesBefore + 1);
  });

  it('keeps a TIFF whose first bytes do not tell its type when the bucket gives its copy an ETag of its own (SSE-KMS)', async () => {
    // sharp writes a TIFF's directory at its end: the copy is checked as the upload was, reading on.
    const tiff = await sharp({ create: { width: 700, height: 400, channels: 3, background: '#2060a0' } })
      .tiff()
      .toBuffer();
    proxy.onRequest((req) =>
      req.headers['x-amz-copy-source']
        ? {
            rewrite: (body) =>
              body.replace(
                /<ETag>[^<]*<\/ETag>/,
                '<ETag>&quot;0f0e0d0c0b0a09080706050403020100&quot;</ETag>',
              ),
          }
        : undefined,
    );
    const { done } = await uploadWithJs(bob, tiff, 'scan.tif', 'image/tiff');
    expect(done.status).toBe(200);
    const { imageId } = (await done.json()) as { imageId: string };
    await t.settle();
    proxy.onRequest(() => undefined);
    const image = await t.services.images.getForUser(await t.user('bob@example.com'), imageId);
    expect([image.state, image.contentType, image.isStored]).toEqual(['ready', 'image/tiff', true]);
    expect((await originalOf(`/images/${imageId}`)).equals(tiff)).toBe(true);
  });

  it('lands a reload of the redirect on its image when the bucket gives a copy an ETag of its own (SSE-KMS)', async () => {
    const png = await makePng(130, 70);
    const back = await storedThrough(await pageForm(bob), png, 'image/png');
    // AWS S3 gives an SSE-KMS object's copy a new ETag that is not the MD5 the form post reported.
    proxy.onRequest((req) =>
      req.headers['x-amz-copy-source']
        ? {
            rewrite: (body) =>
              body.replace(
                /<ETag>[^<]*<\/ETag>/,
                '<ETag>&quot;0f0e0d0c0b0a09080706050403020100&quot;</ETag>',
              ),
          }
        : undefined,
    );
    const done = await bob.get(back);
    expect(done.status).toBe(303);
    proxy.onRequest(() => undefined);
    const reload = await bob.get(back);
    expect(reload.status, await reload.clone().text()).toBe(303);
    expect(reload.headers.get('location')).toBe(done.headers.get('location'));
  });

  /** upload.js in one tab: the page's form taken over for its first file, sent, then completed. */
  async function jsFirstFile(formKey: string, bytes: Buffer, name: string) {
    const res = await bob.postJson('/uploads/presign', { name, size: bytes.length, formKey });
    expect(res.status).toBe(200);
    const policy = (await res.json()) as Policy;
    const stored = await postToBucket(policy, bytes, 'image/png', name);
    expect(stored.status).toBe(201);
    return { policy, etag: stored.headers.get('etag') as string };
  }

  it('answers a completion that names a key no bucket could hold with 404, asking the bucket nothing', async () => {
    const tab = await pageForm(bob);
    const prefix = uploadKeyOf(tab.key);
    // Only requests for keys under this upload count: the app's workers may still be busy with earlier ones.
    let asked = 0;
    proxy.onRequest((req) => {
      if (keyOf(req).startsWith(prefix)) asked++;
      return undefined;
    });
    for (const key of [
      `${prefix}\ud800.png`,
      `${prefix}${'x'.repeat(1100)}`,
      `${prefix}..`,
      `${prefix}a\u0001b`,
    ]) {
      const res = await bob.postJson('/uploads/complete', { key, etag: '"0123"' });
      expect(res.status, key.slice(-10)).toBe(404);
    }
    expect(asked).toBe(0);
  });

  it('gives two tabs whose script takes over the same page form an upload each: both files kept', async () => {
    const first = await makePng(140, 100);
    const second = await makePng(100, 140);
    const tabA = await pageForm(bob);
    const tabB = await pageForm(bob);
    expect(tabB.key).toBe(tabA.key);
    // Both tabs' first files are on their way before either is completed.
    const a = await jsFirstFile(tabA.key, first, 'a.png');
    const b = await jsFirstFile(tabB.key, second, 'b.png');
    expect(b.policy.key).not.toBe(a.policy.key);
    const doneA = await bob.postJson('/uploads/complete', { key: a.policy.key, etag: a.etag });
    const doneB = await bob.postJson('/uploads/complete', { key: b.policy.key, etag: b.etag });
    expect([doneA.status, doneB.status]).toEqual([200, 200]);
    const urlA = ((await doneA.json()) as { url: string }).url;
    const urlB = ((await doneB.json()) as { url: string }).url;
    expect((await originalOf(urlA)).equals(first)).toBe(true);
    expect((await originalOf(urlB)).equals(second)).toBe(true);
  });

  it('keeps upload.js’s file on a page form it took over when another tab posts the plain form right after the answer', async () => {
    const first = await makePng(130, 120);
    const second = await makePng(120, 130);
    const tabA = await pageForm(bob);
    const tabB = await pageForm(bob); // a tab whose script has not run: its form posts as it is
    const a = await jsFirstFile(tabA.key, first, 'a.png');
    // The same upload: its prefix, where other tabs' forms store their files by name.
    expect(uploadKeyOf(a.policy.key)).toBe(uploadKeyOf(tabB.key));
    expect(a.policy.key).not.toBe(tabB.key);
    // Other tabs post under its prefix: its original is copied before the answer.
    const doneA = await bob.postJson('/uploads/complete', { key: a.policy.key, etag: a.etag });
    expect(doneA.status).toBe(200);
    const urlA = ((await doneA.json()) as { url: string }).url;
    expect(await t.count('images', 'staged_key IS NOT NULL')).toBe(0);
    const backB = await storedThrough(tabB, second, 'image/png');
    const doneB = await bob.get(backB);
    expect(doneB.status).toBe(409);
    expect(await doneB.text()).toContain('not kept');
    expect((await originalOf(urlA)).equals(first)).toBe(true);
    // The other tab's file lies beside the first one's until the sweep, once the policy has expired.
    expect(await t.services.storage.head(tabB.key)).not.toBeNull();
    t.advance(PAST_EXPIRY_MS);
    const report = await t.services.uploadSweeper.sweep({ apply: true });
    expect(report.replaysDeleted).toContain(tabB.key);
    expect(await t.services.storage.head(tabB.key)).toBeNull();
    await expectBucketMatchesRows(t.services, bobId);
  });

  it('tells upload.js its file was not kept when a plain post through the same form took its place', async () => {
    const first = await makePng(120, 110);
    const second = await makePng(110, 120);
    const tabA = await pageForm(bob);
    const tabB = await pageForm(bob); // a tab whose script has not run: its form posts as it is
    const a = await jsFirstFile(tabA.key, first, 'a.png');
    // The other tab's file has the name upload.js's file is stored by: it takes its place.
    const sameName = a.policy.key.slice(uploadKeyOf(a.policy.key).length);
    const backB = await storedThrough(tabB, second, 'image/png', sameName);
    const doneA = await bob.postJson('/uploads/complete', { key: a.policy.key, etag: a.etag });
    expect(doneA.status).toBe(409);
    expect(((await doneA.json()) as { error: string }).error).toContain('not kept');
    const doneB = await bob.get(backB);
    expect(doneB.status).toBe(303);
    expect((await originalOf(doneB.headers.get('location') as string)).equals(second)).toBe(true);
  });
});
