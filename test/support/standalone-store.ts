import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { FROM_SOURCES, freePort } from './process.js';

/** What `s3-store` writes to credentials.json in its directory on first start. */
interface StoreCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  bucket: string;
  region: string;
}

/**
 * The S3 store as an operator runs it on its own (packages/s3-store's command, from sources), in
 * its own process on a free loopback port: the external bucket several app instances share.
 */
export async function spawnStandaloneStore(dir: string) {
  const port = await freePort();
  const child: ChildProcessWithoutNullStreams = spawn(
    process.execPath,
    [...FROM_SOURCES, 'packages/s3-store/src/cli.ts', '--dir', dir, '--port', String(port)],
    { env: { PATH: process.env.PATH ?? '' }, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const collect = (d: Buffer) => {
      out += d.toString();
      if (out.includes('endpoint: ')) resolve();
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    void exited.then((code) => reject(new Error(`s3-store exited early with ${code}: ${out}`)));
  });
  const creds = JSON.parse(readFileSync(path.join(dir, 'credentials.json'), 'utf8')) as StoreCredentials;
  const origin = `http://127.0.0.1:${port}`;
  return {
    origin,
    bucket: creds.bucket,
    region: creds.region,
    credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey },
    /** The app's S3_* settings for this store, reached at `endpoint` (its origin, or a proxy's). */
    env(endpoint = origin): Record<string, string> {
      return {
        S3_ENDPOINT: endpoint,
        S3_PUBLIC_ENDPOINT: origin,
        S3_BUCKET: creds.bucket,
        S3_REGION: creds.region,
        S3_ACCESS_KEY_ID: creds.accessKeyId,
        S3_SECRET_ACCESS_KEY: creds.secretAccessKey,
        S3_FORCE_PATH_STYLE: 'true',
      };
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
