/**
 * `npm run bench` in this package: the standalone store against bare Node servers that do the least
 * any S3 store must (stream to a file with an MD5 and an fsync; serve a file), in the same run.
 * Prints a table; figures are for comparing the two columns, not absolute.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { spawnStandalone } from '../test/support.js';

const MiB = 1024 * 1024;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);

/** The floor: a server that writes each PUT body to a file with its MD5, fsyncs it, and serves files. */
async function bareServer() {
  const dir = mkdtempSync(path.join(tmpdir(), 's3-store-bare-'));
  let n = 0;
  const server = http.createServer(async (req, res) => {
    const file = path.join(dir, `${req.url?.length ?? 0}-${n++}`);
    if (req.method === 'PUT') {
      const md5 = createHash('md5');
      const handle = await fs.open(file, 'w');
      await pipeline(
        req,
        async function* (source) {
          for await (const chunk of source) {
            md5.update(chunk as Buffer);
            yield chunk;
          }
        },
        handle.createWriteStream(),
      );
      const sync = await fs.open(file, 'r');
      await sync.sync();
      await sync.close();
      res.writeHead(200, { ETag: `"${md5.digest('hex')}"` }).end();
      return;
    }
    createReadStream(path.join(dir, 'served')).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    dir,
    close: () => {
      server.closeAllConnections();
      server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `concurrency` loops each running `one` until `seconds` pass: completed calls per second, and errors. */
async function rate(seconds: number, concurrency: number, one: () => Promise<unknown>) {
  const end = Date.now() + seconds * 1000;
  let done = 0;
  let errors = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < end) {
        try {
          await one();
          done++;
        } catch {
          errors++;
        }
      }
    }),
  );
  return { perSecond: done / seconds, errors };
}

async function main() {
  const store = await spawnStandalone({ bucket: 'bench' });
  const bare = await bareServer();
  const client = new S3Client({
    endpoint: store.endpoint,
    region: store.region,
    credentials: store.credentials,
    forcePathStyle: true,
  });
  const rows: string[][] = [];
  try {
    const body = randomBytes(8 * MiB);
    let i = 0;
    const storePut = await rate(SECONDS, 4, () =>
      client.send(new PutObjectCommand({ Bucket: store.bucket, Key: `put/${i++}`, Body: body })),
    );
    const barePut = await rate(SECONDS, 4, async () => {
      const res = await fetch(`${bare.origin}/put`, { method: 'PUT', body });
      await res.arrayBuffer();
    });
    rows.push([
      'PUT 8 MiB objects, 4 at once: MiB/s',
      (storePut.perSecond * 8).toFixed(1),
      (barePut.perSecond * 8).toFixed(1),
      `${storePut.errors} / ${barePut.errors}`,
    ]);

    const small = randomBytes(64 * 1024);
    await client.send(new PutObjectCommand({ Bucket: store.bucket, Key: 'get/small', Body: small }));
    await fs.writeFile(path.join(bare.dir, 'served'), small);
    const url = await getSignedUrl(client, new GetObjectCommand({ Bucket: store.bucket, Key: 'get/small' }), {
      expiresIn: 3600,
    });
    const get = (target: string) => async () => {
      const res = await fetch(target);
      if ((await res.arrayBuffer()).byteLength !== small.length) throw new Error('short read');
    };
    const storeGet = await rate(SECONDS, 8, get(url));
    const bareGet = await rate(SECONDS, 8, get(`${bare.origin}/served`));
    rows.push([
      'GET a 64 KiB object by presigned URL, 8 at once: req/s',
      storeGet.perSecond.toFixed(0),
      bareGet.perSecond.toFixed(0),
      `${storeGet.errors} / ${bareGet.errors}`,
    ]);
  } finally {
    await store.stop();
    bare.close();
  }
  const header = ['Measure', 's3-store', 'bare server', 'errors (store / bare)'];
  const table = [header, header.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
  process.stdout.write(`${table}\n`);
}

await main();
