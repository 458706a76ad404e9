import { readdirSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { canonicalPath } from '../src/auth/sigv4.js';
import { MOUNT, sdkCalls, startStore, type TestStore } from './support.js';

let store: TestStore;
beforeAll(async () => {
  store = await startStore();
});
afterAll(() => store.close());

const objectCount = () => store.storage.list('').then((r) => r.keys.length);

function expectS3Error(status: number, code: string, message?: RegExp) {
  return async (res: Response) => {
    const text = await res.text();
    expect(res.status, text).toBe(status);
    expect(text).toContain(`<Code>${code}</Code>`);
    if (message) expect(text).toMatch(message);
    expect(text).not.toMatch(/\n\s+at /);
  };
}

interface FormPost {
  url: string;
  fields: Record<string, string>;
}

async function policy(o: { key?: string; maxBytes?: number; minBytes?: number; ttlSeconds?: number } = {}) {
  return store.storage.presignPost({
    key: o.key ?? 'users/u1/originals/abc',
    maxBytes: o.maxBytes ?? 100,
    ...(o.minBytes !== undefined ? { minBytes: o.minBytes } : {}),
    contentTypePrefix: 'image/',
    status: 204,
    ttlSeconds: o.ttlSeconds ?? 60,
  });
}

function postForm(
  p: FormPost,
  opts: { fields?: Record<string, string>; file?: Buffer; contentType?: string } = {},
) {
  const form = new FormData();
  for (const [k, v] of Object.entries({ ...p.fields, ...opts.fields })) form.append(k, v);
  form.append('Content-Type', opts.contentType ?? 'image/png');
  form.append('file', new Blob([new Uint8Array(opts.file ?? Buffer.from('hello'))]), 'x.png');
  return fetch(p.url, { method: 'POST', body: form });
}

describe('POST policy uploads', () => {
  it('accepts an untouched form and stores the object', async () => {
    const p = await policy({ key: 'users/u1/originals/ok' });
    expect((await postForm(p)).status).toBe(204);
    expect((await store.storage.head('users/u1/originals/ok'))?.size).toBe(5);
  });

  const cases: [string, () => Promise<Response>, (res: Response) => Promise<void>][] = [
    [
      'a tampered policy',
      async () => {
        const p = await policy();
        const json = JSON.parse(Buffer.from(p.fields.Policy as string, 'base64').toString());
        json.conditions.push(['content-length-range', 0, 10_000_000]);
        return postForm(p, { fields: { Policy: Buffer.from(JSON.stringify(json)).toString('base64') } });
      },
      expectS3Error(403, 'SignatureDoesNotMatch'),
    ],
    [
      'a tampered signature',
      async () => postForm(await policy(), { fields: { 'X-Amz-Signature': 'f'.repeat(64) } }),
      expectS3Error(403, 'SignatureDoesNotMatch'),
    ],
    [
      'a policy signed with the wrong secret',
      async () => {
        const wrong = sdkCalls(
          new S3Client({
            endpoint: store.endpoint,
            region: store.region,
            credentials: { accessKeyId: store.credentials.accessKeyId, secretAccessKey: 'not-the-secret' },
            forcePathStyle: true,
          }),
          store.bucket,
        );
        return postForm(
          await wrong.presignPost({
            key: 'users/u1/originals/abc',
            maxBytes: 100,
            contentTypePrefix: 'image/',
            status: 204,
            ttlSeconds: 60,
          }),
        );
      },
      expectS3Error(403, 'SignatureDoesNotMatch'),
    ],
    [
      'an expired policy',
      async () => {
        const p = await policy({ ttlSeconds: 60 });
        store.advance(61_000);
        try {
          return await postForm(p);
        } finally {
          store.advance(-61_000);
        }
      },
      expectS3Error(403, 'AccessDenied', /Policy expired/),
    ],
    [
      'a key other than the one signed',
      async () => postForm(await policy(), { fields: { key: 'users/someone-else/originals/abc' } }),
      expectS3Error(403, 'AccessDenied', /Policy Condition failed/),
    ],
    [
      'a file over the size range',
      async () => postForm(await policy({ maxBytes: 10 }), { file: Buffer.alloc(11) }),
      expectS3Error(400, 'EntityTooLarge'),
    ],
    [
      // Large enough that the store has begun flushing it to disk when the limit is hit.
      'a large file over the size range',
      async () =>
        postForm(await policy({ maxBytes: 5 * 1024 * 1024 }), { file: Buffer.alloc(6 * 1024 * 1024, 7) }),
      expectS3Error(400, 'EntityTooLarge'),
    ],
    [
      'a file under the size range',
      async () => postForm(await policy({ minBytes: 10 }), { file: Buffer.alloc(9) }),
      expectS3Error(400, 'EntityTooSmall'),
    ],
    [
      'a content type outside the prefix',
      async () => postForm(await policy(), { contentType: 'text/html' }),
      expectS3Error(403, 'AccessDenied', /Content-Type/),
    ],
    [
      'a form field the policy does not name',
      async () => postForm(await policy(), { fields: { 'x-amz-meta-owner': 'me' } }),
      expectS3Error(403, 'AccessDenied', /Extra input fields: x-amz-meta-owner/),
    ],
    [
      'a key that climbs out with ../',
      async () => {
        const p = await policy({ key: 'users/u1/../../etc/passwd' });
        return postForm(p);
      },
      expectS3Error(400, 'InvalidArgument'),
    ],
    [
      'a file part before the fields',
      async () => {
        const p = await policy();
        const form = new FormData();
        form.append('file', new Blob(['hello']), 'x.png');
        for (const [k, v] of Object.entries(p.fields)) form.append(k, v);
        return fetch(p.url, { method: 'POST', body: form });
      },
      expectS3Error(400, 'InvalidArgument', /must contain a field named/),
    ],
  ];

  for (const [label, send, check] of cases) {
    it(`refuses ${label} and stores nothing`, async () => {
      const before = await objectCount();
      await check(await send());
      expect(await objectCount()).toBe(before);
      expect(readdirSync(path.join(store.rootDir, 'tmp'))).toEqual([]);
    });
  }

  it('answers a malformed and a truncated multipart body with 400, and keeps serving', async () => {
    const before = await objectCount();
    const malformed = await fetch(`${store.endpoint}/${store.bucket}`, {
      method: 'POST',
      headers: { 'Content-Type': 'multipart/form-data; boundary=xyz' },
      body: 'this is not multipart at all',
    });
    expect(malformed.status).toBe(400);

    const p = await policy();
    const boundary = 'cutcutcut';
    const parts = Object.entries({ ...p.fields, 'Content-Type': 'image/png' })
      .map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`)
      .join('');
    const truncated = `${parts}--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n\r\nhalf a fi`;
    const res = await fetch(`${store.endpoint}/${store.bucket}`, {
      method: 'POST',
      headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` },
      body: truncated,
    });
    expect(res.status).toBe(400);
    expect(await objectCount()).toBe(before);
    await store.storage.ping();
  });

  it('leaves no object and no temp file when the connection is cut mid-upload', async () => {
    const p = await policy({ key: 'users/u1/originals/cut', maxBytes: 10_000_000 });
    const boundary = 'b0undary';
    const head = Object.entries({ ...p.fields, 'Content-Type': 'image/png' })
      .map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`)
      .join('');
    const url = new URL(p.url);
    const tempFiles = () => readdirSync(path.join(store.rootDir, 'tmp'));
    // The refusals above answer before their temp files are removed: start from an empty directory.
    await vi.waitFor(() => expect(tempFiles()).toEqual([]), { timeout: 10_000, interval: 10 });
    const req = http.request({
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      method: 'POST',
      headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}`, 'Content-Length': 5_000_000 },
    });
    req.on('error', () => {});
    req.write(`${head}--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\n`);
    req.write(Buffer.alloc(1_000_000));
    // Cut only once the store is writing the upload, so there is a temp file to clean up.
    await vi.waitFor(() => expect(tempFiles()).toHaveLength(1), { timeout: 10_000, interval: 10 });
    req.destroy();
    await vi.waitFor(() => expect(tempFiles()).toEqual([]), { timeout: 10_000, interval: 10 });
    expect(await store.storage.head('users/u1/originals/cut')).toBeNull();
    await store.storage.ping();
  });
});

/** Malformed escapes cannot be canonicalised; those are sent signed over the raw path and must still be refused. */
function canonicalOrRaw(rawPath: string): string {
  try {
    return canonicalPath(rawPath);
  } catch {
    return rawPath;
  }
}

describe('signed requests', () => {
  const signer = () =>
    new SignatureV4({
      service: 's3',
      region: store.region,
      credentials: store.credentials,
      sha256: Hash.bind(null, 'sha256'),
      uriEscapePath: false,
    });

  /** Signs over S3's canonical form of a raw path, then sends the raw path untouched. */
  async function sendSigned(method: string, rawPath: string, extraHeaders: Record<string, string> = {}) {
    const url = new URL(store.endpoint);
    const signed = await signer().sign(
      new HttpRequest({
        method,
        protocol: 'http:',
        hostname: url.hostname,
        port: Number(url.port),
        path: canonicalOrRaw(rawPath),
        headers: { host: url.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', ...extraHeaders },
      }),
    );
    return new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(
        {
          host: url.hostname,
          port: url.port,
          method,
          path: rawPath,
          headers: signed.headers as Record<string, string>,
        },
        (res) => {
          let body = '';
          res.on('data', (d) => {
            body += d;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      req.end(method === 'PUT' ? 'evil' : undefined);
    });
  }

  for (const rawKey of [
    '../escape',
    '%2e%2e/escape',
    'a/%2E%2E/%2e%2e/escape',
    '%2Fabsolute',
    'nul%00byte',
    'bad%ZZescape',
    '%C3%28',
  ]) {
    it(`refuses the key ${rawKey} with 400, even when correctly signed`, async () => {
      const before = await objectCount();
      const res = await sendSigned('PUT', `${MOUNT}/${store.bucket}/${rawKey}`);
      expect(res.status, res.body).toBe(400);
      expect(await objectCount()).toBe(before);
    });
  }

  it('accepts the same correctly signed raw request for an ordinary key', async () => {
    const res = await sendSigned('PUT', `${MOUNT}/${store.bucket}/plain%20key.txt`);
    expect(res.status, res.body).toBe(200);
    expect((await store.storage.head('plain key.txt'))?.size).toBe(4);
  });

  it('refuses an x-amz- header added after signing', async () => {
    const res = await sendSigned('GET', `${MOUNT}/${store.bucket}/plain%20key.txt`);
    expect(res.status).toBe(200);
    const url = new URL(store.endpoint);
    const signed = await signer().sign(
      new HttpRequest({
        method: 'GET',
        hostname: url.hostname,
        port: Number(url.port),
        path: `${MOUNT}/${store.bucket}/plain%20key.txt`,
        headers: { host: url.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
      }),
    );
    const tampered = await fetch(`${store.endpoint}/${store.bucket}/plain%20key.txt`, {
      headers: { ...(signed.headers as Record<string, string>), 'x-amz-meta-sneaky': '1' },
    });
    await expectS3Error(403, 'AccessDenied', /not signed/)(tampered);
  });

  it('refuses a request from a client with the wrong secret, or a skewed clock, or no auth', async () => {
    const wrong = new S3Client({
      endpoint: store.endpoint,
      region: store.region,
      forcePathStyle: true,
      credentials: { accessKeyId: store.credentials.accessKeyId, secretAccessKey: 'wrong' },
    });
    await expect(
      wrong.send(new PutObjectCommand({ Bucket: store.bucket, Key: 'w', Body: 'x' })),
    ).rejects.toMatchObject({
      name: 'SignatureDoesNotMatch',
    });
    store.advance(16 * 60 * 1000);
    try {
      await expect(store.storage.put('skewed', Buffer.from('x'), 'text/plain')).rejects.toMatchObject({
        name: 'RequestTimeTooSkewed',
      });
    } finally {
      store.advance(-16 * 60 * 1000);
    }
    await expectS3Error(
      403,
      'AccessDenied',
    )(await fetch(`${store.endpoint}/${store.bucket}/plain%20key.txt`));
    await expectS3Error(
      400,
      'InvalidRequest',
    )(
      await fetch(`${store.endpoint}/${store.bucket}/plain%20key.txt`, {
        headers: { Authorization: 'AWS AKID:c2lnbmF0dXJl' },
      }),
    );
    expect(await store.storage.head('w')).toBeNull();
    expect(await store.storage.head('skewed')).toBeNull();
  });

  it('refuses a tampered or expired presigned GET', async () => {
    await store.storage.put('secret/a.txt', Buffer.from('a'), 'text/plain');
    await store.storage.put('secret/b.txt', Buffer.from('b'), 'text/plain');
    const url = await store.storage.presignGet({ key: 'secret/a.txt', ttlSeconds: 60 });
    expect((await fetch(url)).status).toBe(200);
    await expectS3Error(
      403,
      'SignatureDoesNotMatch',
    )(await fetch(url.replace('secret/a.txt', 'secret/b.txt')));
    await expectS3Error(
      403,
      'SignatureDoesNotMatch',
    )(await fetch(`${url}&response-content-type=text%2Fhtml`));
    store.advance(61_000);
    try {
      await expectS3Error(403, 'AccessDenied', /expired/)(await fetch(url));
    } finally {
      store.advance(-61_000);
    }
  });

  it('lists 2,500 keys in pages of 1000', async () => {
    const keys = Array.from({ length: 2500 }, (_, i) => `bulk/${String(i).padStart(5, '0')}`);
    for (let i = 0; i < keys.length; i += 50) {
      await Promise.all(
        keys.slice(i, i + 50).map((k) => store.storage.put(k, Buffer.from('x'), 'text/plain')),
      );
    }
    const pages: number[] = [];
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await store.storage.list('bulk/', cursor);
      pages.push(page.keys.length);
      seen.push(...page.keys.map((k) => k.key));
      cursor = page.nextCursor;
    } while (cursor);
    expect(pages).toEqual([1000, 1000, 500]);
    expect(seen).toEqual(keys);
  });

  it('answers ranges like S3: suffix, open-ended, and unsatisfiable', async () => {
    await store.storage.put('range.txt', Buffer.from('0123456789'), 'text/plain');
    const url = await store.storage.presignGet({ key: 'range.txt', ttlSeconds: 60 });
    const get = (range: string) => fetch(url, { headers: { Range: range } });
    const suffix = await get('bytes=-3');
    expect([suffix.status, await suffix.text()]).toEqual([206, '789']);
    const open = await get('bytes=7-');
    expect([open.status, open.headers.get('content-range')]).toEqual([206, 'bytes 7-9/10']);
    await expectS3Error(416, 'InvalidRange')(await get('bytes=20-30'));
  });
});
