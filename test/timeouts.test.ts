import { randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, signUp } from './support/app.js';
import { makePng } from './support/images.js';
import { startAppServer } from './support/server.js';
import { type Policy, upload } from './support/uploads.js';

// Far longer than any bound under test: the tests wait for conditions, this only stops a hang.
const WAIT = { timeout: 20_000, interval: 50 };

interface Exchange {
  /** everything the server wrote before it closed the connection */
  answer: string;
  /** how much of the body the client had sent by then */
  sentBodyBytes: number;
}

/**
 * A slow client on a raw socket: the head at once, the first `first` body bytes, then `step` bytes
 * every `gapMs` (never, without gapMs) until the server hangs up.
 */
function slowClient(
  origin: string,
  head: string,
  body: Buffer,
  o: { first?: number; step?: number; gapMs?: number; onSent?: (bytes: number) => void } = {},
): Promise<Exchange> {
  const { hostname, port } = new URL(origin);
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), hostname);
    let answer = '';
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    const send = (bytes: number) => {
      if (socket.destroyed || sent >= body.length) return;
      socket.write(body.subarray(sent, sent + bytes));
      sent = Math.min(body.length, sent + bytes);
      o.onSent?.(sent);
    };
    socket.on('data', (d) => {
      answer += d.toString('latin1');
    });
    // A reset after the answer is part of being cut off.
    socket.on('error', () => {});
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ answer, sentBodyBytes: sent });
    });
    socket.on('connect', () => {
      socket.write(head);
      send(o.first ?? 0);
      if (o.gapMs) timer = setInterval(() => send(o.step ?? 1), o.gapMs);
    });
  });
}

function requestHead(
  method: string,
  target: string,
  origin: string,
  headers: Record<string, string | number>,
) {
  const lines = Object.entries({ Host: new URL(origin).host, ...headers }).map(([k, v]) => `${k}: ${v}\r\n`);
  return `${method} ${target} HTTP/1.1\r\n${lines.join('')}\r\n`;
}

/** A browser's form post to the bucket: the policy's fields, then a file of `fileBytes` bytes. */
function bucketForm(policy: Policy, fileBytes: number) {
  const boundary = `slow${randomUUID().replaceAll('-', '')}`;
  const fields = { ...policy.fields, 'Content-Type': 'image/png' };
  const parts = Object.entries(fields).map(
    ([name, value]) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`,
  );
  const fileHead = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="slow.png"\r\nContent-Type: image/png\r\n\r\n`;
  const body = Buffer.concat([
    Buffer.from(parts.join('') + fileHead),
    Buffer.alloc(fileBytes, 7),
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { body, contentType: `multipart/form-data; boundary=${boundary}` };
}

/** One GET on its own connection, so no pooled socket counts against the connection cap. */
function getOnce(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', reject);
  });
}

describe('a server with short timeouts', () => {
  let app: Awaited<ReturnType<typeof startAppServer>>;
  let client: Client;
  const tempFiles = () => readdirSync(path.join(app.dataDir, 'objects', 'tmp'));

  beforeAll(async () => {
    app = await startAppServer({
      SIGNUP: 'open',
      REQUEST_TIMEOUT_SECONDS: '2',
      IDLE_TIMEOUT_SECONDS: '1',
      UPLOAD_TIMEOUT_SECONDS: '4',
    });
    client = new Client((input, init) => fetch(input, init), app.origin, app.origin);
    await signUp(client, 'slow@example.com');
  });
  afterAll(() => app.close());

  async function presign(): Promise<Policy> {
    const res = await client.postJson('/uploads/presign', { name: 'slow.png' });
    expect(res.status).toBe(200);
    return (await res.json()) as Policy;
  }

  it('answers a form post whose body trickles in for longer than the request timeout with 408', async () => {
    const body = Buffer.from(`email=slow%40example.com&password=${'x'.repeat(2000)}`);
    const head = requestHead('POST', '/login', app.origin, {
      'Content-Type': 'application/x-www-form-urlencoded',
      'Content-Length': body.length,
      Origin: app.origin,
    });
    // A byte every 200 ms never idles for a second, but would take 7 minutes in all.
    const { answer, sentBodyBytes } = await slowClient(app.origin, head, body, { gapMs: 200 });
    expect(answer).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(answer).toContain('took too long to arrive');
    expect(sentBodyBytes).toBeLessThan(body.length);
  }, 30_000);

  it('answers a form post whose body stops arriving with 408', async () => {
    const body = Buffer.from('email=slow%40example.com&password=correct+horse+battery');
    const head = requestHead('POST', '/login', app.origin, {
      'Content-Type': 'application/x-www-form-urlencoded',
      'Content-Length': body.length,
      Origin: app.origin,
    });
    const { answer, sentBodyBytes } = await slowClient(app.origin, head, body, { first: 10 });
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(sentBodyBytes).toBe(10);
  }, 30_000);

  it("cuts an upload to the store that keeps trickling past its budget with S3's RequestTimeout, leaving no temp file", async () => {
    const policy = await presign();
    const { body, contentType } = bucketForm(policy, 300_000);
    const head = requestHead('POST', new URL(policy.url).pathname, app.origin, {
      'Content-Type': contentType,
      'Content-Length': body.length,
    });
    let sawTempFile = false;
    const exchange = slowClient(app.origin, head, body, {
      first: 100_000,
      step: 100,
      gapMs: 100,
      onSent: () => {
        sawTempFile ||= tempFiles().length > 0;
      },
    });
    const { answer, sentBodyBytes } = await exchange;
    // The store had begun writing the file when the budget ran out.
    expect(sawTempFile).toBe(true);
    expect(answer).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(answer).toContain('<Code>RequestTimeout</Code>');
    expect(sentBodyBytes).toBeLessThan(body.length);
    await expect.poll(tempFiles, WAIT).toEqual([]);
    const completed = await client.postJson('/uploads/complete', { key: policy.key });
    expect(completed.status).toBeGreaterThanOrEqual(400);
  }, 30_000);

  it("cuts an upload to the store that stops moving with S3's RequestTimeout, leaving no temp file", async () => {
    const policy = await presign();
    const { body, contentType } = bucketForm(policy, 300_000);
    const head = requestHead('POST', new URL(policy.url).pathname, app.origin, {
      'Content-Type': contentType,
      'Content-Length': body.length,
    });
    const exchange = slowClient(app.origin, head, body, { first: 100_000 });
    await expect.poll(() => tempFiles().length, WAIT).toBeGreaterThan(0);
    const { answer, sentBodyBytes } = await exchange;
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('<Code>RequestTimeout</Code>');
    expect(sentBodyBytes).toBe(100_000);
    await expect.poll(tempFiles, WAIT).toEqual([]);
  }, 30_000);

  it('closes a connection that never sends a request', async () => {
    const { answer } = await slowClient(app.origin, '', Buffer.alloc(0));
    // Closed silently when idle, or with Node's 408 when the headers timeout comes first.
    expect(answer).toMatch(/^(|HTTP\/1\.1 408 [\s\S]*)$/);
  }, 30_000);

  it('closes a connection whose headers never finish', async () => {
    const { answer } = await slowClient(app.origin, 'GET / HTTP/1.1\r\nHost: x\r\n', Buffer.alloc(0));
    expect(answer).toMatch(/^(|HTTP\/1\.1 408 [\s\S]*)$/);
  }, 30_000);

  it('still takes a normal upload, start to finish, and keeps serving after all that', async () => {
    const id = await upload(client, await makePng(), 'normal.png');
    expect((await client.get(`/images/${id}`)).status).toBe(200);
    expect(await getOnce(`${app.origin}/healthz`)).toBe(200);
  }, 30_000);
});

describe('a server with a connection cap', () => {
  let app: Awaited<ReturnType<typeof startAppServer>>;

  beforeAll(async () => {
    app = await startAppServer({ MAX_CONNECTIONS: '3' });
  });
  afterAll(() => app.close());

  it('refuses connections past the cap and takes new ones once a slot is free', async () => {
    const { hostname, port } = new URL(app.origin);
    const held = await Promise.all(
      [1, 2, 3].map(
        () =>
          new Promise<net.Socket>((resolve) => {
            const socket = net.connect(Number(port), hostname, () => resolve(socket));
            socket.on('error', () => {});
            // Half a request: the server keeps the connection, waiting for the rest.
            socket.write('GET /healthz HTTP/1.1\r\n');
          }),
      ),
    );
    const refused = await slowClient(app.origin, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', Buffer.alloc(0));
    expect(refused.answer).toBe('');
    held[0]?.destroy();
    await expect.poll(() => getOnce(`${app.origin}/healthz`).catch(() => 0), WAIT).toBe(200);
    for (const socket of held) socket.destroy();
  }, 30_000);
});
