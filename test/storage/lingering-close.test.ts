import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createS3Server, type S3ServerOptions } from '@s3-gallery/s3-store';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { EMBEDDED_BUCKET, EMBEDDED_MOUNT } from '../../src/storage/embedded.js';
import { createStorage } from '../../src/storage/s3.js';
import type { Storage } from '../../src/storage/storage.js';
import { freePort, type ServerProcess, spawnServer } from '../support/process.js';

interface Running {
  endpoint: string;
  storage: Storage;
  close(): Promise<void>;
}

/** An embedded store on a loopback port; `linger` shortens the bounds so a test can reach them. */
async function start(linger?: S3ServerOptions['lingerAfterError']): Promise<Running> {
  const rootDir = mkdtempSync(path.join(tmpdir(), 's3g-linger-'));
  const credentials = {
    accessKeyId: 'S3GTESTKEY',
    secretAccessKey: 'test-secret-key-for-the-embedded-store',
  };
  const store = createS3Server({
    root: rootDir,
    mountPath: EMBEDDED_MOUNT,
    bucket: EMBEDDED_BUCKET,
    region: 'us-east-1',
    credentials,
    ...(linger ? { lingerAfterError: linger } : {}),
  });
  await store.ready;
  const server = http.createServer((req, res) => store.handle(req, res));
  // Idle connections stay open long past any test: only the store's own close ends one.
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/s3`;
  return {
    endpoint,
    storage: createStorage({
      endpoint,
      region: 'us-east-1',
      bucket: 'gallery',
      credentials,
      forcePathStyle: true,
    }),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(rootDir, { recursive: true, force: true });
    },
  };
}

/** A form post whose policy was changed after signing: the store refuses it as soon as it reads the fields. */
async function tamperedForm(storage: Storage) {
  const p = await storage.presignPost({
    key: 'users/u1/originals/x',
    maxBytes: 50 * 1024 * 1024,
    contentTypePrefix: 'image/',
    status: 204,
    ttlSeconds: 60,
  });
  const json = JSON.parse(Buffer.from(p.fields.Policy as string, 'base64').toString());
  json.conditions.push(['content-length-range', 0, 100]);
  const fields = {
    ...p.fields,
    Policy: Buffer.from(JSON.stringify(json)).toString('base64'),
    'Content-Type': 'image/png',
  };
  const boundary = 'lingerlinger';
  const head = Buffer.from(
    `${Object.entries(fields)
      .map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`)
      .join('')}--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n\r\n`,
  );
  return { url: new URL(p.url), fields, head, boundary };
}

/**
 * The form post over a bare socket, so nothing but the store decides when the connection ends:
 * the request head and the form's fields, then the file as `send` writes it.
 */
function rawPost(
  form: Awaited<ReturnType<typeof tamperedForm>>,
  contentLength: number,
  send: (socket: net.Socket) => void,
  extraHeaders = '',
) {
  const socket = net.connect(Number(form.url.port), form.url.hostname);
  let wasReset = false;
  socket.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'ECONNRESET') wasReset = true;
  });
  let received = '';
  socket.on('data', (d) => {
    received += d.toString('latin1');
  });
  let isEnded = false;
  socket.on('end', () => {
    isEnded = true;
  });
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.write(
    `POST ${form.url.pathname} HTTP/1.1\r\nHost: ${form.url.host}\r\n` +
      `Content-Type: multipart/form-data; boundary=${form.boundary}\r\nContent-Length: ${contentLength}\r\n${extraHeaders}\r\n`,
  );
  socket.write(form.head);
  send(socket);
  /** isEnded and not wasReset: the store closed the connection in order (FIN), not with a reset */
  return { socket, closed, received: () => received, isEnded: () => isEnded, wasReset: () => wasReset };
}

describe('answers to requests refused while the client is still sending', () => {
  // The server in its own process: with client and store on one event loop the reset never showed.
  let server: ServerProcess;
  let dataDir: string;
  let store: { storage: Storage };
  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 's3g-linger-app-'));
    server = await spawnServer(dataDir, await freePort());
    const creds = JSON.parse(readFileSync(path.join(dataDir, 'embedded-s3.json'), 'utf8'));
    store = {
      storage: createStorage({
        endpoint: `${server.origin}/s3`,
        region: creds.region,
        bucket: creds.bucket,
        credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey },
        forcePathStyle: true,
      }),
    };
  }, 30_000);
  afterAll(async () => {
    server.child.kill('SIGTERM');
    await server.exited;
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('lets fetch read the 403 of a tampered 8 MiB form post every time, instead of a reset', async () => {
    const file = new Blob([new Uint8Array(8 * 1024 * 1024)]);
    for (let i = 0; i < 20; i++) {
      const { url, fields } = await tamperedForm(store.storage);
      const form = new FormData();
      for (const [k, v] of Object.entries(fields)) form.append(k, v);
      form.append('file', file, 'x.png');
      const res = await fetch(url, { method: 'POST', body: form });
      expect(res.status, `attempt ${i}`).toBe(403);
      expect(await res.text()).toContain('<Code>SignatureDoesNotMatch</Code>');
    }
  });
});

describe('the connection after a refused request whose body ended in time', () => {
  let store: Running;
  beforeAll(async () => {
    store = await start();
  });
  afterAll(() => store.close());

  const statusLines = (text: string) => text.match(/HTTP\/1\.1 \d{3} /g) ?? [];

  it('stays usable: a request sent right behind the refused one is answered', async () => {
    const form = await tamperedForm(store.storage);
    const file = Buffer.alloc(2 * 1024 * 1024);
    const tail = Buffer.from(`\r\n--${form.boundary}--\r\n`);
    const post = rawPost(form, form.head.length + file.length + tail.length, (socket) => {
      socket.write(file);
      socket.write(tail);
      socket.write(`GET /s3/gallery/next HTTP/1.1\r\nHost: ${form.url.host}\r\n\r\n`);
    });
    await vi.waitFor(() => expect(statusLines(post.received())).toHaveLength(2), { timeout: 10_000 });
    expect(statusLines(post.received())).toEqual(['HTTP/1.1 403 ', 'HTTP/1.1 403 ']);
    expect(post.received()).toContain('<Code>SignatureDoesNotMatch</Code>');
    expect(post.received()).toContain('<Code>AccessDenied</Code>');
    post.socket.destroy();
  });

  it('is closed in order, after the body, when the client asked for Connection: close', async () => {
    const form = await tamperedForm(store.storage);
    const file = Buffer.alloc(2 * 1024 * 1024);
    const tail = Buffer.from(`\r\n--${form.boundary}--\r\n`);
    const post = rawPost(
      form,
      form.head.length + file.length + tail.length,
      (socket) => {
        socket.write(file);
        socket.write(tail);
      },
      'Connection: close\r\n',
    );
    await post.closed;
    expect(statusLines(post.received())).toEqual(['HTTP/1.1 403 ']);
    expect(post.isEnded()).toBe(true);
    expect(post.wasReset()).toBe(false);
  });
});

describe('the bounds of lingering', () => {
  // Each store has one bound short and the other out of reach, so each test shows one bound at work.
  let timeBound: Running;
  let byteBound: Running;
  beforeAll(async () => {
    timeBound = await start({ ms: 300, maxBytes: 1024 * 1024 * 1024 });
    byteBound = await start({ ms: 60_000, maxBytes: 1024 * 1024 });
  });
  afterAll(async () => {
    await timeBound.close();
    await byteBound.close();
  });

  it('closes a client that keeps trickling after the answer once the time bound is reached', async () => {
    const form = await tamperedForm(timeBound.storage);
    let timer: NodeJS.Timeout | undefined;
    const post = rawPost(form, form.head.length + 10 * 1024 * 1024, (socket) => {
      timer = setInterval(() => socket.write(Buffer.alloc(16)), 20);
    });
    try {
      // The client never stops, so only the store can end this, and it answered first.
      await post.closed;
      expect(post.received()).toMatch(/^HTTP\/1\.1 403 /);
      expect(post.received()).toContain('<Code>SignatureDoesNotMatch</Code>');
    } finally {
      clearInterval(timer);
    }
  });

  it('closes a client that keeps sending fast after the answer once the byte bound is reached', async () => {
    const form = await tamperedForm(byteBound.storage);
    const total = 100 * 1024 * 1024;
    let sent = 0;
    const chunk = Buffer.alloc(64 * 1024);
    const post = rawPost(form, form.head.length + total, (socket) => {
      const pump = () => {
        while (sent < total && !socket.destroyed) {
          sent += chunk.length;
          if (!socket.write(chunk)) {
            socket.once('drain', pump);
            return;
          }
        }
      };
      pump();
    });
    await post.closed;
    expect(post.received()).toMatch(/^HTTP\/1\.1 403 /);
    // Cut after about 1 MiB more (plus what the socket buffers held), not after the 100 MiB.
    expect(sent).toBeLessThan(20 * 1024 * 1024);
  });
});
