import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createStorage } from '../../src/storage/s3.js';
import type { Storage } from '../../src/storage/storage.js';
import { freePort, type ServerProcess, spawnServer } from '../support/process.js';

// The real server in its own process, so a crash shows as an exit instead of taking the test run down.
let server: ServerProcess;
let dataDir: string;
let storage: Storage;
let signer: SignatureV4;
let exitCode: number | null | undefined;

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 's3g-chunked-'));
  server = await spawnServer(dataDir, await freePort());
  void server.exited.then((code) => {
    exitCode = code;
  });
  const creds = JSON.parse(readFileSync(path.join(dataDir, 'embedded-s3.json'), 'utf8'));
  const credentials = { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey };
  storage = createStorage({
    endpoint: `${server.origin}/s3`,
    region: creds.region,
    bucket: creds.bucket,
    credentials,
    forcePathStyle: true,
  });
  signer = new SignatureV4({
    service: 's3',
    region: creds.region,
    credentials,
    sha256: Hash.bind(null, 'sha256'),
    uriEscapePath: false,
  });
}, 30_000);

afterAll(async () => {
  server.child.kill('SIGTERM');
  await server.exited;
  rmSync(dataDir, { recursive: true, force: true });
});

const tempFiles = () => readdirSync(path.join(dataDir, 'objects', 'tmp'));

interface Sent {
  status: number;
  text: string;
}

/** A PUT signed as the JS SDK signs a streamed body: headers only, the aws-chunked body unsigned. */
async function startChunkedPut(
  key: string,
  contentLength: number,
  o: { decodedLength?: number; trailer?: string | null } = {},
) {
  const url = new URL(server.origin);
  const p = `/s3/gallery/${encodeURIComponent(key)}`;
  const trailer = o.trailer === undefined ? 'x-amz-checksum-crc32' : o.trailer;
  const signed = await signer.sign(
    new HttpRequest({
      method: 'PUT',
      protocol: 'http:',
      hostname: url.hostname,
      port: Number(url.port),
      path: p,
      headers: {
        host: url.host,
        'content-encoding': 'aws-chunked',
        'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
        ...(trailer ? { 'x-amz-trailer': trailer } : {}),
        ...(o.decodedLength !== undefined ? { 'x-amz-decoded-content-length': String(o.decodedLength) } : {}),
      },
    }),
  );
  const req = http.request({
    host: url.hostname,
    port: url.port,
    method: 'PUT',
    path: p,
    agent: false,
    headers: { ...(signed.headers as Record<string, string>), 'content-length': String(contentLength) },
  });
  const answer = new Promise<Sent>((resolve, reject) => {
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.on('data', (d) => {
        text += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
  });
  return { req, answer };
}

async function putChunked(
  key: string,
  body: Buffer,
  o: { decodedLength?: number; trailer?: string | null } = {},
): Promise<Sent> {
  const { req, answer } = await startChunkedPut(key, body.length, o);
  req.end(body);
  return answer;
}

function crc32(data: Buffer): string {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(zlib.crc32(data) >>> 0);
  return b.toString('base64');
}

/** Frames data as the SDK does: chunks of the given sizes, a zero chunk, the CRC32 trailer. */
function encode(data: Buffer, sizes: number[], o: { extension?: string; withTrailer?: boolean } = {}) {
  const parts: Buffer[] = [];
  let at = 0;
  for (const size of sizes) {
    const piece = data.subarray(at, at + size);
    if (piece.length === 0) break;
    at += piece.length;
    parts.push(
      Buffer.from(`${piece.length.toString(16)}${o.extension ?? ''}\r\n`),
      piece,
      Buffer.from('\r\n'),
    );
  }
  if (at < data.length) {
    const rest = data.subarray(at);
    parts.push(Buffer.from(`${rest.length.toString(16)}\r\n`), rest, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\n'));
  if (o.withTrailer !== false) parts.push(Buffer.from(`x-amz-checksum-crc32:${crc32(data)}\r\n`));
  parts.push(Buffer.from('\r\n'));
  return Buffer.concat(parts);
}

async function expectStored(key: string, data: Buffer) {
  const head = await storage.head(key);
  expect(head?.size).toBe(data.length);
  if (data.length > 0) expect(Buffer.from(await storage.getRange(key, 0, data.length))).toEqual(data);
}

function expectS3Error400({ status, text }: Sent) {
  expect(status, text).toBe(400);
  expect(text).toMatch(/<Error><Code>(IncompleteBody|InvalidRequest|BadDigest)<\/Code>/);
  expect(text).not.toMatch(/\n\s+at /);
}

describe('aws-chunked PUT bodies', () => {
  it('stores a well-formed body, decoded', async () => {
    const data = Buffer.from('hello, chunked world');
    const res = await putChunked('chunked/ok', encode(data, [5, 7]), { decodedLength: data.length });
    expect(res).toMatchObject({ status: 200 });
    await expectStored('chunked/ok', data);
  });

  // What an outside review sent: each one ended the process with "Unhandled 'error' event".
  const malformed: [string, string | Buffer][] = [
    ['a size that is not hex', 'zz\r\nhello\r\n0\r\n\r\n'],
    ['a chunk over 16 MiB', `1000001\r\n${'x'.repeat(1000)}`],
    ['no final chunk', '5\r\nhello\r\n'],
    ['no CRLF after the data', '5\r\nhelloXX0\r\n\r\n'],
    ['a 10 KB size line', `${'a'.repeat(10 * 1024)}\r\nhello\r\n0\r\n\r\n`],
    ['a trailer without a colon', '5\r\nhello\r\n0\r\nx-amz-checksum-crc32 nocolon\r\n\r\n'],
    ['a trailer nobody announced', '5\r\nhello\r\n0\r\nx-amz-meta-sneaky:1\r\n\r\n'],
    ['bytes after the end', '5\r\nhello\r\n0\r\n\r\nmore'],
    ['a wrong trailing CRC32', '5\r\nhello\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n'],
  ];
  for (const [label, body] of malformed) {
    it(`answers ${label} with a 400 error, keeps running and leaves no temp file`, async () => {
      const res = await putChunked('chunked/bad', Buffer.from(body));
      expectS3Error400(res);
      expect(exitCode).toBeUndefined();
      expect(tempFiles()).toEqual([]);
      expect(await storage.head('chunked/bad')).toBeNull();
    });
  }

  it('refuses a body that decodes to more or less than x-amz-decoded-content-length', async () => {
    const data = Buffer.from('hello');
    expectS3Error400(await putChunked('chunked/len', encode(data, [5]), { decodedLength: 4 }));
    expectS3Error400(await putChunked('chunked/len', encode(data, [5]), { decodedLength: 6 }));
    const huge = await putChunked('chunked/len', encode(data, [5]), { decodedLength: 6 * 1024 ** 3 });
    expect(huge.status).toBe(400);
    expect(huge.text).toContain('<Code>EntityTooLarge</Code>');
    expect(await storage.head('chunked/len')).toBeNull();
  });

  it('survives a client that hangs up mid-body and removes the temp file', async () => {
    const data = Buffer.alloc(3 * 1024 * 1024, 7);
    const body = encode(data, [1024 * 1024, 1024 * 1024, 1024 * 1024]);
    const { req, answer } = await startChunkedPut('chunked/cut', body.length, { decodedLength: data.length });
    answer.catch(() => undefined);
    req.write(body.subarray(0, 2 * 1024 * 1024));
    await vi.waitFor(() => expect(tempFiles()).toHaveLength(1), { timeout: 5000, interval: 10 });
    req.destroy();
    await vi.waitFor(() => expect(tempFiles()).toEqual([]), { timeout: 5000, interval: 10 });
    expect(await storage.head('chunked/cut')).toBeNull();
    expect(exitCode).toBeUndefined();
  });

  it('never ends the process or leaves a temp file, whatever the body; stores exactly the decoded bytes of a valid one', async () => {
    const valid = fc.record({
      data: fc.uint8Array({ maxLength: 3000 }).map((a) => Buffer.from(a)),
      sizes: fc.array(fc.integer({ min: 1, max: 1500 }), { maxLength: 6 }),
      extension: fc.constantFrom('', ';chunk-signature=x', ';a=b;c'),
      withTrailer: fc.boolean(),
    });
    // Damage to a valid body: a cut, a byte changed, bytes inserted or removed anywhere.
    const damage = fc.oneof(
      fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
      fc.record({
        kind: fc.constant('insert' as const),
        at: fc.nat(),
        bytes: fc.oneof(
          fc.uint8Array({ minLength: 1, maxLength: 8 }).map((a) => Buffer.from(a)),
          fc
            .constantFrom('\r\n', '\r', '\n', ';', ':', 'ffffffff', '1000001', '-1', ' ', '\r\n0\r\n\r\n')
            .map((s) => Buffer.from(s)),
        ),
      }),
      fc.record({
        kind: fc.constant('remove' as const),
        at: fc.nat(),
        length: fc.integer({ min: 1, max: 6 }),
      }),
    );
    let n = 0;
    await fc.assert(
      fc.asyncProperty(valid, fc.option(damage, { nil: undefined }), async (v, d) => {
        const key = `chunked/prop/${n++}`;
        let body = encode(v.data, v.sizes, v);
        if (d) {
          const at = d.at % (body.length + 1);
          if (d.kind === 'truncate') body = body.subarray(0, at);
          else if (d.kind === 'flip' && at < body.length) body = Buffer.from(body.fill(d.byte, at, at + 1));
          else if (d.kind === 'insert')
            body = Buffer.concat([body.subarray(0, at), d.bytes, body.subarray(at)]);
          else if (d.kind === 'remove')
            body = Buffer.concat([body.subarray(0, at), body.subarray(at + d.length)]);
        }
        const res = await putChunked(key, body, {
          decodedLength: v.data.length,
          trailer: v.withTrailer ? 'x-amz-checksum-crc32' : null,
        });
        const { status, text } = res;
        if (status === 200 && !d) {
          await expectStored(key, v.data);
        } else if (status === 200) {
          // Damage that still frames (a changed extension; a changed data byte with no checksum to
          // catch it) is a different valid body: it must still decode to the announced length.
          expect((await storage.head(key))?.size).toBe(v.data.length);
        } else {
          expect(status, text).toBe(400);
          expect(text).toMatch(/<Error><Code>\w+<\/Code>/);
          expect(await storage.head(key)).toBeNull();
        }
        if (!d) expect(status, text).toBe(200);
        expect(tempFiles()).toEqual([]);
        expect(exitCode).toBeUndefined();
      }),
      { numRuns: 150 },
    );
  }, 60_000);
});
