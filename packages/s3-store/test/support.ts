import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import {
  CopyObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { createPresignedPost } from '@aws-sdk/s3-presigned-post';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { AccessEntry } from '../src/access-log.js';
import type { KeyLookup } from '../src/auth/sigv4.js';
import type { StoreChange } from '../src/disk/objects.js';
import type { FormRefusalPage } from '../src/form-refusal.js';
import type { Logger } from '../src/logger.js';
import { createS3Server } from '../src/server.js';

export const MOUNT = '/s3';

/**
 * A real store on a free loopback port, in a fresh temp dir, mounted under `mountPath` (MOUNT) as
 * an app would, with a clock tests can move and the AWS SDK's client on it.
 */
export async function startStore(
  o: {
    bucket?: string;
    mountPath?: string;
    credentials?: { accessKeyId: string; secretAccessKey: string };
    formRefusalPage?: FormRefusalPage;
    oneKeyPerFormPrefix?: boolean;
    log?: Logger;
    onChange?: (change: StoreChange) => void;
    keys?: KeyLookup;
    onAccess?: (entry: AccessEntry) => void;
  } = {},
) {
  const root = mkdtempSync(path.join(tmpdir(), 's3-store-'));
  const credentials = o.credentials ?? {
    accessKeyId: 'S3STORETESTKEY',
    secretAccessKey: 'test-secret-key-for-the-store',
  };
  const region = 'us-east-1';
  const bucket = o.bucket ?? 'gallery';
  const mountPath = o.mountPath ?? MOUNT;
  let offsetMs = 0;
  const store = createS3Server({
    root,
    bucket,
    region,
    credentials,
    mountPath,
    now: () => new Date(Date.now() + offsetMs),
    ...(o.formRefusalPage ? { formRefusalPage: o.formRefusalPage } : {}),
    ...(o.oneKeyPerFormPrefix ? { oneKeyPerFormPrefix: true } : {}),
    ...(o.log ? { log: o.log } : {}),
    ...(o.onChange ? { onChange: o.onChange } : {}),
    ...(o.keys ? { keys: o.keys } : {}),
    ...(o.onAccess ? { onAccess: o.onAccess } : {}),
  });
  await store.ready;
  const server = http.createServer((req, res) => store.handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const endpoint = `http://127.0.0.1:${port}${mountPath}`;
  const client = new S3Client({ endpoint, region, credentials, forcePathStyle: true });
  return {
    endpoint,
    origin: `http://127.0.0.1:${port}`,
    bucket,
    region,
    credentials,
    rootDir: root,
    client,
    storage: sdkCalls(client, bucket),
    /** Moves the store's clock: expiry and skew checks see the future. */
    advance(ms: number) {
      offsetMs += ms;
    },
    /** Stops answering, as a store that went down does; resume() brings it back on the same port. */
    async pause() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    async resume() {
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await store.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

export type TestStore = Awaited<ReturnType<typeof startStore>>;

/** The error code the SDK reports for a refused call ('' when it succeeded). */
export async function codeOf(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return '';
  } catch (err) {
    return (err as { name?: string }).name ?? String(err);
  }
}

/** The few SDK calls the tests make over and over, each in one line where it is used. */
export function sdkCalls(client: S3Client, Bucket: string) {
  return {
    async head(Key: string) {
      try {
        const r = await client.send(new HeadObjectCommand({ Bucket, Key }));
        return { size: r.ContentLength ?? 0, contentType: r.ContentType, etag: r.ETag };
      } catch (err) {
        if (err instanceof S3ServiceException && err.$metadata.httpStatusCode === 404) return null;
        throw err;
      }
    },
    async put(Key: string, Body: Uint8Array | Readable, ContentType: string, ContentLength?: number) {
      const r = await client.send(new PutObjectCommand({ Bucket, Key, Body, ContentType, ContentLength }));
      return { etag: r.ETag };
    },
    async copy(from: string, Key: string, o: { ifMatch?: string } = {}) {
      const CopySource = `${Bucket}/${from.split('/').map(encodeURIComponent).join('/')}`;
      const r = await client.send(
        new CopyObjectCommand({ Bucket, Key, CopySource, CopySourceIfMatch: o.ifMatch }),
      );
      return { etag: r.CopyObjectResult?.ETag };
    },
    async getRange(Key: string, start: number, end: number) {
      const r = await client.send(new GetObjectCommand({ Bucket, Key, Range: `bytes=${start}-${end}` }));
      return (await r.Body?.transformToByteArray()) ?? new Uint8Array();
    },
    async list(Prefix: string, ContinuationToken?: string, MaxKeys = 1000) {
      const r = await client.send(new ListObjectsV2Command({ Bucket, Prefix, ContinuationToken, MaxKeys }));
      return {
        keys: (r.Contents ?? []).map((c) => ({ key: c.Key ?? '', size: c.Size ?? 0 })),
        nextCursor: r.IsTruncated ? r.NextContinuationToken : undefined,
      };
    },
    ping: () => client.send(new ListObjectsV2Command({ Bucket, MaxKeys: 1 })),
    presignGet: (o: { key: string; ttlSeconds: number; contentType?: string }) =>
      getSignedUrl(client, new GetObjectCommand({ Bucket, Key: o.key, ResponseContentType: o.contentType }), {
        expiresIn: o.ttlSeconds,
      }),
    /** A browser form's fields for one key, as an app signs it: size range, type prefix, expiry. */
    presignPost: (o: {
      key: string;
      maxBytes: number;
      minBytes?: number;
      contentTypePrefix: string;
      status: 200 | 201 | 204;
      ttlSeconds: number;
    }) =>
      createPresignedPost(client, {
        Bucket,
        Key: o.key,
        Conditions: [
          ['content-length-range', o.minBytes ?? 1, o.maxBytes],
          ['starts-with', '$Content-Type', o.contentTypePrefix],
        ],
        Fields: { success_action_status: String(o.status) },
        Expires: o.ttlSeconds,
      }),
  };
}

const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url));

/**
 * The standalone command (`s3-store --dir ... --port 0`) in its own process, run from its sources,
 * as a person or an app's external-S3 tests use it: what it printed, read back.
 */
export async function spawnStandalone(o: { bucket?: string } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 's3-store-standalone-'));
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', CLI, '--dir', dir, '--port', '0', ...(o.bucket ? ['--bucket', o.bucket] : [])],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const printed = await new Promise<Record<string, string>>((resolve, reject) => {
    const onData = () => {
      if (!out.includes('\ntry: ')) return;
      child.stdout.off('data', onData);
      resolve(
        Object.fromEntries(
          out.split('\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]),
        ),
      );
    };
    child.stdout.on('data', onData);
    void exited.then((code) => reject(new Error(`s3-store exited early with ${code}: ${out}`)));
  });
  const credentials = {
    accessKeyId: printed.accessKeyId as string,
    secretAccessKey: printed.secretAccessKey as string,
  };
  return {
    dir,
    endpoint: printed.endpoint as string,
    bucket: printed.bucket as string,
    region: printed.region as string,
    credentials,
    printed,
    /** the credentials file the command wrote, as parsed */
    credentialsFile: () => JSON.parse(readFileSync(path.join(dir, 'credentials.json'), 'utf8')),
    child,
    exited,
    output: () => out,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const code = await exited;
      rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
}
