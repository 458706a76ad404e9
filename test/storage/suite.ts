import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SourceChanged, type Storage } from '../../src/storage/storage.js';

export interface StorageUnderTest {
  storage: Storage;
  /** a prefix no other run uses, so an external bucket can be shared */
  prefix: string;
  close(): Promise<void>;
}

/** Behaviour every S3 we support must show through our wrapper: the embedded store and a real one. */
export function defineStorageSuite(start: () => Promise<StorageUnderTest>) {
  let s: StorageUnderTest;
  let storage: Storage;
  let p: string;
  beforeAll(async () => {
    s = await start();
    storage = s.storage;
    p = s.prefix;
  });
  afterAll(async () => {
    const { keys } = await storage.list(p);
    await storage.deleteMany(keys.map((k) => k.key));
    await s.close();
  });

  it('puts, heads, reads a range of, and deletes an object', async () => {
    const key = `${p}round-trip.bin`;
    const body = Buffer.from('0123456789abcdef');
    const { etag } = await storage.put(key, body, 'application/x-test');
    const head = await storage.head(key);
    expect(head?.size).toBe(16);
    expect(head?.contentType).toBe('application/x-test');
    expect(head?.etag).toBe(etag);
    expect(etag).toBe('"4032af8d61035123906e58e067140cc5"');
    expect(Buffer.from(await storage.getRange(key, 2, 5)).toString()).toBe('2345');
    expect(Buffer.from(await storage.getRange(key, 10, 100)).toString()).toBe('abcdef');
    await storage.delete(key);
    expect(await storage.head(key)).toBeNull();
    await storage.delete(key);
  });

  it('keeps keys with spaces, unicode and punctuation apart', async () => {
    const keys = [`${p}a b+c%d.txt`, `${p}café`, `${p}cafe\u0301`, `${p}x!'()*~.txt`, `${p}deep/dir/`];
    for (const [i, key] of keys.entries()) await storage.put(key, Buffer.from(String(i)), 'text/plain');
    for (const [i, key] of keys.entries()) {
      expect(Buffer.from(await storage.getRange(key, 0, 10)).toString(), key).toBe(String(i));
    }
  });

  it('lists in pages with a cursor, in byte order', async () => {
    const keys = ['b', 'a', 'c/1', 'c/2', 'd'].map((k) => `${p}list/${k}`);
    for (const key of keys) await storage.put(key, Buffer.from('x'), 'text/plain');
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await storage.list(`${p}list/`, cursor, 2);
      seen.push(...page.keys.map((k) => k.key));
      cursor = page.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual([...keys].sort());
  });

  it('deletes many objects in one call', async () => {
    const keys = Array.from({ length: 12 }, (_, i) => `${p}many/${i}`);
    for (const key of keys) await storage.put(key, Buffer.from('x'), 'text/plain');
    expect((await storage.deleteMany(keys)).failed).toEqual([]);
    expect((await storage.list(`${p}many/`)).keys).toEqual([]);
  });

  it('copies an object server-side, keeping its bytes, type and ETag, under keys that need encoding', async () => {
    const source = `${p}copy/from a+b/été.png`;
    const body = Buffer.from('copied bytes');
    const { etag } = await storage.put(source, body, 'image/png');
    const target = `${p}copy/to/100% final+.png`;
    const copied = await storage.copy(source, target, { ifMatch: etag as string });
    expect(copied.etag).toBe(etag);
    const head = await storage.head(target);
    expect(head?.contentType).toBe('image/png');
    expect(head?.etag).toBe(etag);
    expect(head?.size).toBe(body.length);
    expect(Buffer.from(await storage.getRange(target, 0, 100)).toString()).toBe('copied bytes');
    // The source is untouched: completion deletes it itself.
    expect((await storage.head(source))?.etag).toBe(etag);
  });

  it('refuses a copy whose source changed since (If-Match), and one whose source is gone', async () => {
    const source = `${p}copy/changing.bin`;
    await storage.put(source, Buffer.from('first'), 'application/octet-stream');
    const stale = '"0123456789abcdef0123456789abcdef"';
    const refusal = storage.copy(source, `${p}copy/never.bin`, { ifMatch: stale });
    await expect(refusal).rejects.toBeInstanceOf(SourceChanged);
    // What the bucket said, kept as the cause: S3's 412.
    await expect(refusal).rejects.toMatchObject({
      cause: { name: 'PreconditionFailed', $metadata: { httpStatusCode: 412 } },
    });
    await expect(storage.copy(`${p}copy/missing.bin`, `${p}copy/never.bin`)).rejects.toMatchObject({
      name: 'NoSuchKey',
      $metadata: { httpStatusCode: 404 },
    });
    expect(await storage.head(`${p}copy/never.bin`)).toBeNull();
  });

  it('takes a browser-style form upload under a presigned POST policy', async () => {
    const key = `${p}form/upload.png`;
    const { url, fields } = await storage.presignPost({
      key,
      maxBytes: 1000,
      contentTypePrefix: 'image/',
      status: 201,
      ttlSeconds: 60,
    });
    const form = new FormData();
    for (const [k, v] of Object.entries(fields)) form.append(k, v);
    form.append('Content-Type', 'image/png');
    form.append('file', new Blob([new Uint8Array(Buffer.from('not really a png'))]), 'upload.png');
    const res = await fetch(url, { method: 'POST', body: form });
    expect(res.status).toBe(201);
    expect(await res.text()).toContain(`<Key>${key}</Key>`);
    expect((await storage.head(key))?.contentType).toBe('image/png');
  });

  it('serves presigned GETs, with a download name when asked', async () => {
    const key = `${p}presigned/photo.jpg`;
    await storage.put(key, Buffer.from('jpeg bytes'), 'image/jpeg');
    const url = await storage.presignGet({
      key,
      ttlSeconds: 60,
      download: 'Été à Paris "1".jpg',
      contentType: 'image/jpeg',
    });
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('jpeg bytes');
    expect(res.headers.get('content-type')).toBe('image/jpeg');
    const disposition = res.headers.get('content-disposition') ?? '';
    expect(disposition).toContain("filename*=UTF-8''%C3%89t%C3%A9%20%C3%A0%20Paris%20%221%22.jpg");
    expect(disposition).toContain('filename="_t_ _ Paris _1_.jpg"');
  });

  it('streams a 20 MiB upload and reads back the same bytes', async () => {
    const key = `${p}big.bin`;
    const chunk = Buffer.alloc(1024 * 1024);
    let sent = 0;
    const body = Readable.from(
      (function* () {
        for (let i = 0; i < 20; i++) {
          chunk.fill(i);
          sent += chunk.length;
          yield Buffer.from(chunk);
        }
      })(),
    );
    await storage.put(key, body, 'application/octet-stream', 20 * 1024 * 1024);
    expect(sent).toBe(20 * 1024 * 1024);
    const md5 = createHash('md5');
    for (let i = 0; i < 20; i++) md5.update(Buffer.alloc(1024 * 1024, i));
    const head = await storage.head(key);
    expect(head?.size).toBe(20 * 1024 * 1024);
    // S3's ETag for a single-part upload is the MD5 of its bytes, which sync tools compare with theirs.
    expect(head?.etag).toBe(`"${md5.digest('hex')}"`);
    const tail = await storage.getRange(key, 20 * 1024 * 1024 - 2, 20 * 1024 * 1024 - 1);
    expect([...tail]).toEqual([19, 19]);
    const middle = await storage.getRange(key, 5 * 1024 * 1024, 5 * 1024 * 1024);
    expect([...middle]).toEqual([5]);
  });
}
