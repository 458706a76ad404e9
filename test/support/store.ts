import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { createS3Server } from '@s3-gallery/s3-store';
import { EMBEDDED_BUCKET, EMBEDDED_MOUNT } from '../../src/storage/embedded.js';
import { createStorage } from '../../src/storage/s3.js';

/** A real embedded store on a free loopback port, in a fresh temp dir, with a clock tests can move. */
export async function startTestStore(opts: { mountPath?: string } = {}) {
  const rootDir = mkdtempSync(path.join(tmpdir(), 's3g-store-'));
  const credentials = {
    accessKeyId: 'S3GTESTKEY',
    secretAccessKey: 'test-secret-key-for-the-embedded-store',
  };
  const region = 'us-east-1';
  const bucket = EMBEDDED_BUCKET;
  const mountPath = opts.mountPath ?? EMBEDDED_MOUNT;
  let offsetMs = 0;
  const store = createS3Server({
    root: rootDir,
    bucket,
    region,
    credentials,
    mountPath,
    now: () => new Date(Date.now() + offsetMs),
  });
  await store.ready;
  const server = http.createServer((req, res) => store.handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const endpoint = `http://127.0.0.1:${port}${mountPath}`;
  const storage = createStorage({ endpoint, region, bucket, credentials, forcePathStyle: true });
  /** The AWS SDK's own client on the store, for S3 calls the app's wrapper does not make. */
  const client = new S3Client({ endpoint, region, credentials, forcePathStyle: true });
  return {
    endpoint,
    origin: `http://127.0.0.1:${port}`,
    bucket,
    region,
    credentials,
    rootDir,
    storage,
    client,
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
      rmSync(rootDir, { recursive: true, force: true });
    },
  };
}
