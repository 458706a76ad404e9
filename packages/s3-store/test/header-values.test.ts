import { readdirSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { createPresignedPost } from '@aws-sdk/s3-presigned-post';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DiskObjects } from '../src/disk/objects.js';
import { startStore, type TestStore } from './support.js';

let store: TestStore;
let client: S3Client;
beforeAll(async () => {
  store = await startStore();
  client = store.client;
});
afterAll(() => store.close());

/** A policy like the app's, plus a metadata field any value may fill. */
function policyFor(key: string) {
  return createPresignedPost(client, {
    Bucket: store.bucket,
    Key: key,
    Conditions: [
      ['content-length-range', 1, 1000],
      ['starts-with', '$Content-Type', 'image/'],
      ['starts-with', '$x-amz-meta-note', ''],
    ],
    Fields: { success_action_status: '204' },
    Expires: 60,
  });
}

async function postForm(key: string, contentType: string, note = 'fine') {
  const { url, fields } = await policyFor(key);
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  form.append('Content-Type', contentType);
  form.append('x-amz-meta-note', note);
  form.append('file', new Blob(['image bytes']), 'x.png');
  return fetch(url, { method: 'POST', body: form });
}

describe('header values the store keeps', () => {
  it('stores an ordinary form upload with its type and metadata', async () => {
    const res = await postForm('hv/ok', 'image/png', 'café, tab\there');
    expect(res.status, await res.text()).toBe(204);
    const get = await fetch(await store.storage.presignGet({ key: 'hv/ok', ttlSeconds: 60 }));
    expect(get.status).toBe(200);
    expect(get.headers.get('content-type')).toBe('image/png');
    expect(get.headers.get('x-amz-meta-note')).toBe('café, tab\there');
  });

  const refused: [string, string, string][] = [
    ['a CR/LF in the type (a header injection)', 'image/png\r\nX-Injected: 1', 'fine'],
    ['a lone LF in the type', 'image/png\nX-Injected: 1', 'fine'],
    ['a control character in the type', 'image/png\u0001', 'fine'],
    ['a character beyond ISO-8859-1 in the type', 'image/p\u20acng', 'fine'],
    ['a CR/LF in a metadata value', 'image/png', 'one\r\nSet-Cookie: a=b'],
    ['a NUL in a metadata value', 'image/png', 'nul\u0000'],
  ];
  for (const [label, type, note] of refused) {
    it(`refuses a form with ${label} with 400 InvalidArgument and stores nothing`, async () => {
      const key = `hv/refused/${label.replaceAll(' ', '-')}`;
      const res = await postForm(key, type, note);
      const text = await res.text();
      expect(res.status, text).toBe(400);
      expect(text).toContain('<Code>InvalidArgument</Code>');
      expect(await store.storage.head(key)).toBeNull();
      expect(readdirSync(path.join(store.rootDir, 'tmp'))).toEqual([]);
    });
  }

  it('refuses a response-* override that no response could carry with 400, not 500', async () => {
    await store.storage.put('hv/plain', Buffer.from('x'), 'text/plain');
    const url = await store.storage.presignGet({ key: 'hv/plain', ttlSeconds: 60, contentType: 'a\u0001b' });
    const res = await fetch(url);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('<Code>InvalidArgument</Code>');
  });

  it('serves an object an older version stored with a bad type or metadata, without those values', async () => {
    // Written straight to disk, as the store did before it checked values.
    const disk = new DiskObjects(store.rootDir);
    await disk.write('hv/legacy', Readable.from([Buffer.from('old bytes')]), {
      contentType: 'image/png\r\nX-Injected: 1',
      metadata: { note: 'a\r\nb', kept: 'yes' },
      maxBytes: 1000,
    });
    const get = await fetch(await store.storage.presignGet({ key: 'hv/legacy', ttlSeconds: 60 }));
    expect(get.status).toBe(200);
    expect(await get.text()).toBe('old bytes');
    expect(get.headers.get('content-type')).toBe('binary/octet-stream');
    expect(get.headers.get('x-injected')).toBeNull();
    expect(get.headers.get('x-amz-meta-kept')).toBe('yes');
    expect(get.headers.get('x-amz-missing-meta')).toBe('1');
    const head = await store.storage.head('hv/legacy');
    expect(head).toMatchObject({ size: 9, contentType: 'binary/octet-stream' });
  });
});
