/**
 * The bench's PostgreSQL side: this tree's production build on a fresh PostgreSQL database, with
 * the standalone s3-store (built, `packages/s3-store/bin/s3-store.js`) as its bucket, and the large
 * gallery's user seeded with `seedPostgresImages`; the link to its page `deep` images in is read
 * from that database. The server is BENCH_DATABASE_URL's, else TEST_DATABASE_URL's, else the local
 * one the tests use; without one the side is skipped.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { redactUrl } from '../../src/db/database.js';
import { type FreshPostgres, freshPostgres } from '../../test/support/postgres.js';
import { type DeepPage, postgresDeepPage, seedPostgresImages } from './seed.js';

const serverUrl =
  process.env.BENCH_DATABASE_URL ??
  process.env.TEST_DATABASE_URL ??
  'postgres://postgres@127.0.0.1:5432/postgres';

/** What the bench gives this module: its own ways to start, stop and sign up (see run.ts). */
export interface BenchTools {
  root: string;
  serverArgs: string[];
  freePort(): Promise<number>;
  startTimed(args: string[], env: Record<string, string>, url: string): Promise<{ child: ChildProcess }>;
  stop(child: ChildProcess): Promise<void>;
  signUp(origin: string, email: string): Promise<string>;
}

export interface PostgresSide {
  origin: string;
  cookie: string;
  /** the app's process, to wait until it is idle */
  pid: number;
  seededMs: number;
  /** the page after the `deep`th newest image, read from the database once seeded */
  deep: DeepPage;
  close(): Promise<void>;
}

/** Starts the PostgreSQL side with `count` images for `email`; null (after a printed note) without a server. */
export async function startPostgresSide(
  tools: BenchTools,
  o: { email: string; count: number; deep: number },
): Promise<PostgresSide | null> {
  let database: FreshPostgres;
  try {
    database = await freshPostgres(serverUrl, 's3g_bench');
  } catch (err) {
    console.log(
      `\nNo PostgreSQL answers at ${redactUrl(serverUrl)} (${err instanceof Error ? err.message : String(err)}): ` +
        'the gallery on PostgreSQL is not measured. Set BENCH_DATABASE_URL to a server the bench may create databases on.\n',
    );
    return null;
  }
  const url = new URL(database.url);
  const dir = mkdtempSync(path.join(os.tmpdir(), 's3g-bench-pg-'));
  const children: ChildProcess[] = [];
  const close = async () => {
    for (const child of children.reverse()) await tools.stop(child);
    await database.drop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const store = await startStore(tools, path.join(dir, 'store'));
    children.push(store.child);
    const port = await tools.freePort();
    const origin = `http://127.0.0.1:${port}`;
    const env = {
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      SIGNUP: 'open',
      DATA_DIR: path.join(dir, 'app'),
      PORT: String(port),
      HOST: '127.0.0.1',
      APP_ORIGIN: origin,
      DATABASE_URL: url.toString(),
      S3_ENDPOINT: store.endpoint,
      S3_BUCKET: store.bucket,
      S3_REGION: store.region,
      S3_ACCESS_KEY_ID: store.accessKeyId,
      S3_SECRET_ACCESS_KEY: store.secretAccessKey,
      S3_FORCE_PATH_STYLE: 'true',
    };
    const app = await tools.startTimed(tools.serverArgs, env, `${origin}/healthz`);
    children.push(app.child);
    const cookie = await tools.signUp(origin, o.email);
    const seeded = await seedPostgresImages({ url: url.toString(), email: o.email, count: o.count });
    console.log(`seeded ${o.count} images into PostgreSQL in ${(seeded.ms / 1000).toFixed(1)} s`);
    const deep = await postgresDeepPage(url.toString(), o.email, o.deep);
    return { origin, cookie, pid: app.child.pid as number, seededMs: seeded.ms, deep, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** The built s3-store command on a free port; its settings from the credentials.json it writes. */
async function startStore(tools: BenchTools, dir: string) {
  mkdirSync(dir, { recursive: true });
  const port = await tools.freePort();
  const child = spawn(
    process.execPath,
    [path.join(tools.root, 'packages/s3-store/bin/s3-store.js'), '--dir', dir, '--port', String(port)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('endpoint: ')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`s3-store exited with ${code}`)));
  });
  child.stdout?.resume();
  const creds = JSON.parse(readFileSync(path.join(dir, 'credentials.json'), 'utf8')) as {
    bucket: string;
    region: string;
    accessKeyId: string;
    secretAccessKey: string;
  };
  return { child, endpoint: `http://127.0.0.1:${port}`, ...creds };
}
