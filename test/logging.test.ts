import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestApp, type TestApp } from './support/app.js';
import { startAppServer } from './support/server.js';

type Line = Record<string, unknown>;

/** A logger like the server's whose JSON lines the test can read. */
function capturingLogger() {
  const lines: Line[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const text of String(chunk).split('\n')) if (text) lines.push(JSON.parse(text) as Line);
      done();
    },
  });
  return { log: pino({ level: 'info', base: undefined }, sink), lines };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('request ids in the log', () => {
  let t: TestApp;
  const { log, lines } = capturingLogger();
  const requestLine = (reqId: string | null) => lines.find((l) => l.msg === 'request' && l.reqId === reqId);

  beforeAll(async () => {
    // Behind a proxy the app trusts (TRUST_PROXY), as a proxy's ids only count there.
    t = await makeTestApp({ log, env: { TRUST_PROXY: 'true' } });
    t.app.get('/explode', () => {
      throw new Error('boom');
    });
  });
  afterAll(() => t.close());

  it('gives each request an id, answers it in X-Request-Id and writes it on its log line', async () => {
    const first = (await t.client().get('/signup')).headers.get('x-request-id');
    const second = (await t.client().get('/signup')).headers.get('x-request-id');
    expect(first).toMatch(UUID);
    expect(second).toMatch(UUID);
    expect(second).not.toBe(first);
    expect(requestLine(first)).toMatchObject({ method: 'GET', path: '/signup', status: 200 });
    expect(requestLine(second)).toMatchObject({ method: 'GET', path: '/signup', status: 200 });
  });

  it("keeps a proxy's X-Request-Id that looks like an id, and replaces one that does not", async () => {
    const kept = await t.client().get('/login', { 'X-Request-Id': 'proxy-42_a=' });
    expect(kept.headers.get('x-request-id')).toBe('proxy-42_a=');
    expect(requestLine('proxy-42_a=')).toBeTruthy();
    for (const forged of ['two words', 'x'.repeat(256), '{"level":60}']) {
      const res = await t.client().get('/login', { 'X-Request-Id': forged });
      expect(res.headers.get('x-request-id'), forged).toMatch(UUID);
      expect(lines.some((l) => l.reqId === forged)).toBe(false);
    }
  });

  it('writes an unexpected failure with the id of the request it happened in', async () => {
    const res = await t.client().get('/explode');
    expect(res.status).toBe(500);
    const reqId = res.headers.get('x-request-id');
    expect(lines.find((l) => l.msg === 'unhandled error')).toMatchObject({
      reqId,
      level: 50,
      path: '/explode',
    });
    expect(requestLine(reqId)).toMatchObject({ status: 500 });
  });
});

describe('request ids without a trusted proxy', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await makeTestApp();
  });
  afterAll(() => t.close());

  it("never lets a client name its own request's id", async () => {
    const res = await t.client().get('/login', { 'X-Request-Id': 'chosen-by-client' });
    expect(res.headers.get('x-request-id')).toMatch(UUID);
  });
});

describe('request ids of requests the server cuts short', () => {
  const { log, lines } = capturingLogger();
  let app: Awaited<ReturnType<typeof startAppServer>>;
  beforeAll(async () => {
    app = await startAppServer(
      { REQUEST_TIMEOUT_SECONDS: '2', IDLE_TIMEOUT_SECONDS: '1', TRUST_PROXY: 'true' },
      log,
    );
  });
  afterAll(() => app.close());

  it('writes a body that stopped arriving with the id its request carried', async () => {
    const { hostname, port } = new URL(app.origin);
    const answer = await new Promise<string>((resolve) => {
      const socket = net.connect(Number(port), hostname);
      let text = '';
      socket.on('data', (d) => {
        text += d.toString('latin1');
      });
      socket.on('error', () => {});
      socket.on('close', () => resolve(text));
      socket.on('connect', () => {
        socket.write(
          `POST /login HTTP/1.1\r\nHost: ${new URL(app.origin).host}\r\nOrigin: ${app.origin}\r\n` +
            'Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n' +
            'X-Request-Id: slow-1\r\n\r\nemail=',
        );
      });
    });
    expect(answer.startsWith('HTTP/1.1 408 ')).toBe(true);
    await expect
      .poll(() => lines.find((l) => l.msg === 'request timed out'), { timeout: 10_000 })
      .toMatchObject({ reqId: 'slow-1', reason: 'idle', method: 'POST', path: '/login' });
    // Whatever the app itself writes about that request carries the same id.
    for (const line of lines.filter((l) => l.path === '/login')) expect(line.reqId).toBe('slow-1');
  }, 30_000);
});

describe('one logger', () => {
  // What may write to the terminal directly: the CLI's output and the server's message for a bad
  // setting. The s3-store package writes nothing itself when given a logger (the app gives it its own).
  const ALLOWED: Record<string, number> = { 'src/server.ts': 1 };

  it('leaves console output in src to the CLI and the message for a bad setting', () => {
    const found: Record<string, number> = {};
    const files = ['src', 'packages/s3-store/src'].flatMap((dir) =>
      readdirSync(dir, { recursive: true, withFileTypes: true }),
    );
    for (const entry of files) {
      if (!entry.isFile() || !/\.tsx?$/.test(entry.name)) continue;
      const file = path.join(entry.parentPath, entry.name);
      if (file === path.join('src', 'cli.ts')) continue;
      const uses = readFileSync(file, 'utf8').match(/\bconsole\.\w+\(/g)?.length ?? 0;
      if (uses) found[file.split(path.sep).join('/')] = uses;
    }
    expect(found).toEqual(ALLOWED);
  });
});
