import http from 'node:http';
import { createPresignedPost } from '@aws-sdk/s3-presigned-post';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStore, type TestStore } from './support.js';

const FILENAME = '$' + '{filename}';

/** A signed form whose key ends in ${filename}: the SDK signs a starts-with condition for its prefix. */
async function formFor(store: TestStore, prefix: string, maxBytes = 1000, expires = 60) {
  return createPresignedPost(store.client, {
    Bucket: store.bucket,
    Key: `${prefix}${FILENAME}`,
    Conditions: [['content-length-range', 1, maxBytes]],
    Fields: { success_action_status: '201' },
    Expires: expires,
  });
}

/** Posts one file through the form, named `name` (no name at all when undefined). */
async function postThrough(
  form: Awaited<ReturnType<typeof formFor>>,
  name: string | undefined,
  body = 'image bytes',
) {
  const data = new FormData();
  for (const [k, v] of Object.entries(form.fields)) data.append(k, v);
  const blob = new Blob([body]);
  if (name === undefined) data.append('file', blob);
  else data.append('file', blob, name);
  const res = await fetch(form.url, { method: 'POST', body: data });
  return { status: res.status, text: await res.text() };
}

const keysUnder = async (store: TestStore, prefix: string) =>
  (await store.storage.list(prefix)).keys.map((k) => k.key);

describe(`${FILENAME} in a form’s key, as S3 does it`, () => {
  let store: TestStore;
  beforeAll(async () => {
    store = await startStore();
  });
  afterAll(() => store.close());

  it('stores the file under the prefix by the name the form sent, read as UTF-8, after its last \\ or /', async () => {
    const cases: [string, string][] = [
      ['photo.png', 'photo.png'],
      ['Ünïcödé 写真 📷.png', 'Ünïcödé 写真 📷.png'],
      ['C:\\Users\\me\\holiday.png', 'holiday.png'],
      ['a "quoted" name.png', 'a %22quoted%22 name.png'], // the form encoding's, as browsers send it
    ];
    for (const [i, [name, stored]] of cases.entries()) {
      const res = await postThrough(await formFor(store, `fn/${i}/`), name);
      expect(res.status, res.text).toBe(201);
      expect(await keysUnder(store, `fn/${i}/`), name).toEqual([`fn/${i}/${stored}`]);
    }
  });

  it('stores several names through one form: the policy bounds the prefix, not the count', async () => {
    const form = await formFor(store, 'many/');
    for (const name of ['one.png', 'two.png']) expect((await postThrough(form, name)).status).toBe(201);
    expect(await keysUnder(store, 'many/')).toEqual(['many/one.png', 'many/two.png']);
  });

  it('refuses a name the key rules refuse, storing nothing: too long, a control character', async () => {
    const long = await postThrough(await formFor(store, 'long/'), `${'é'.repeat(600)}.png`);
    expect(long.status).toBe(400);
    expect(long.text).toContain('KeyTooLongError');
    const tab = await postThrough(await formFor(store, 'tab/'), 'a\tb.png');
    expect(tab.status).toBe(400);
    expect(tab.text).toContain('InvalidArgument');
    expect([...(await keysUnder(store, 'long/')), ...(await keysUnder(store, 'tab/'))]).toEqual([]);
  });
});

describe('one key per form prefix (oneKeyPerFormPrefix, a deviation an app opts into)', () => {
  let store: TestStore;
  beforeAll(async () => {
    store = await startStore({ oneKeyPerFormPrefix: true });
  });
  afterAll(() => store.close());

  it('stores one name under a prefix, by any of the forms signed for it; the same name replaces it', async () => {
    const first = await formFor(store, 'one/');
    const again = await formFor(store, 'one/'); // the page re-signed: another policy, the same prefix
    expect((await postThrough(first, 'a.png', 'first')).status).toBe(201);
    for (const form of [first, again]) {
      const other = await postThrough(form, 'b.png');
      expect(other.status).toBe(403);
      expect(other.text).toContain('AccessDenied');
      expect(other.text).toContain('already stored through this form');
    }
    expect((await postThrough(again, 'a.png', 'second')).status).toBe(201);
    expect(await keysUnder(store, 'one/')).toEqual(['one/a.png']);
    expect(
      await (await fetch(await store.storage.presignGet({ key: 'one/a.png', ttlSeconds: 60 }))).text(),
    ).toBe('second');
    // Another prefix is another upload.
    expect((await postThrough(await formFor(store, 'two/'), 'b.png')).status).toBe(201);
  });

  it('keeps one of two names posted at once', async () => {
    const form = await formFor(store, 'race/');
    const results = await Promise.all(['x.png', 'y.png'].map((name) => postThrough(form, name)));
    expect(results.map((r) => r.status).sort()).toEqual([201, 403]);
    expect(await keysUnder(store, 'race/')).toHaveLength(1);
  });

  it('frees the prefix when nothing was stored (too large), and once its policies have expired', async () => {
    const form = await formFor(store, 'free/', 10);
    expect((await postThrough(form, 'big.png', 'x'.repeat(11))).status).toBe(400);
    expect((await postThrough(form, 'small.png', 'x')).status).toBe(201);
    expect((await postThrough(form, 'later.png', 'x')).status).toBe(403);
    // A form signed again lives on past the first one's expiry: then the prefix is free.
    const fresh = await formFor(store, 'free/', 10, 180);
    expect((await postThrough(fresh, 'later.png', 'x')).status).toBe(403);
    store.advance(61_000);
    try {
      expect((await postThrough(fresh, 'later.png', 'x')).status).toBe(201);
    } finally {
      store.advance(-61_000);
    }
    expect(await keysUnder(store, 'free/')).toEqual(['free/later.png', 'free/small.png']);
  });

  it('holds the prefix while a post of its name fails and another of the same name is stored', async () => {
    const form = await formFor(store, 'slow/', 10);
    // Post A: a name's file, too large, sent slowly: it claims the prefix and keeps it while on its way.
    const boundary = 'slowboundary';
    const head = Object.entries(form.fields)
      .map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`)
      .join('');
    const url = new URL(form.url);
    const slow = http.request(url, {
      method: 'POST',
      headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` },
    });
    const answered = new Promise<number>((resolve, reject) => {
      slow.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      slow.on('error', reject);
    });
    slow.write(
      `${head}--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n`,
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    // Post B: the same name, small: stored.
    expect((await postThrough(form, 'a.png', 'x')).status).toBe(201);
    // A fails (too large): B's file is there, so the prefix stays a.png's.
    slow.end(`${'x'.repeat(20)}\r\n--${boundary}--\r\n`);
    expect(await answered).toBe(400);
    expect((await postThrough(form, 'c.png', 'x')).status).toBe(403);
    expect(await keysUnder(store, 'slow/')).toEqual(['slow/a.png']);
  });

  it('leaves a form whose key is fixed alone', async () => {
    const fixed = await createPresignedPost(store.client, {
      Bucket: store.bucket,
      Key: 'fixed/key',
      Fields: { success_action_status: '201' },
      Expires: 60,
    });
    for (let i = 0; i < 2; i++) {
      const res = await postThrough(fixed, `n${i}.png`);
      expect(res.status, res.text).toBe(201);
    }
  });
});
