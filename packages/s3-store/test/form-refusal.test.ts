import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FormRefusal } from '../src/form-refusal.js';
import { startStore, type TestStore } from './support.js';

/** A form post as a client with these headers sends it (node:http: fetch always says Sec-Fetch-Mode: cors). */
async function postForm(
  url: string,
  fields: Record<string, string>,
  file: Buffer,
  headers: Record<string, string>,
) {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  form.append('Content-Type', 'image/png');
  form.append('file', new Blob([new Uint8Array(file)]), 'x.png');
  const encoded = new Response(form);
  const body = Buffer.from(await encoded.arrayBuffer());
  return new Promise<{ status: number; type: string; text: string }>((resolve, reject) => {
    const req = http.request(url, {
      method: 'POST',
      headers: { 'Content-Type': encoded.headers.get('content-type') as string, ...headers },
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          type: res.headers['content-type'] ?? '',
          text: Buffer.concat(chunks).toString(),
        }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('a refused browser form upload, as a page (formRefusalPage)', () => {
  let store: TestStore;
  const seen: FormRefusal[] = [];
  let failRender = false;
  beforeAll(async () => {
    store = await startStore({
      formRefusalPage: (refusal) => {
        if (failRender) throw new Error('no page today');
        seen.push(refusal);
        return `<!DOCTYPE html><h1>Refused: ${refusal.code}</h1>`;
      },
    });
  });
  afterAll(() => store.close());

  const tooBig = async (headers: Record<string, string>) => {
    const p = await store.storage.presignPost({
      key: 'users/u1/uploads/big',
      maxBytes: 10,
      contentTypePrefix: 'image/',
      status: 204,
      ttlSeconds: 60,
    });
    return postForm(p.url, p.fields, Buffer.alloc(11, 1), headers);
  };

  it('answers a navigation with the page, at S3’s status, and tells it the limit and the page it came from', async () => {
    const res = await tooBig({ 'Sec-Fetch-Mode': 'navigate', Referer: 'http://app.example/upload' });
    expect(res.status).toBe(400);
    expect(res.type).toBe('text/html; charset=utf-8');
    expect(res.text).toBe('<!DOCTYPE html><h1>Refused: EntityTooLarge</h1>');
    expect(seen.at(-1)).toMatchObject({
      status: 400,
      code: 'EntityTooLarge',
      maxSizeAllowed: 10,
      referer: 'http://app.example/upload',
    });
    expect(await store.storage.head('users/u1/uploads/big')).toBeNull();
    // An older browser without Sec-Fetch-* headers, asking for HTML, gets it too.
    expect((await tooBig({ Accept: 'text/html,application/xhtml+xml' })).type).toBe(
      'text/html; charset=utf-8',
    );
  });

  it('keeps S3’s XML for scripts and tools, and when the page cannot be made', async () => {
    const clients: Record<string, string>[] = [
      { 'Sec-Fetch-Mode': 'cors', Accept: 'text/html' },
      { Accept: '*/*' },
      {},
    ];
    for (const headers of clients) {
      const res = await tooBig(headers);
      expect(res.type).toBe('application/xml');
      expect(res.text).toContain('<Code>EntityTooLarge</Code>');
    }
    failRender = true;
    const res = await tooBig({ 'Sec-Fetch-Mode': 'navigate' });
    failRender = false;
    expect(res.status).toBe(400);
    expect(res.text).toContain('<Code>EntityTooLarge</Code>');
  });
});
