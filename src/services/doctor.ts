import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { sql } from 'kysely';
import type { Config } from '../config.js';
import { openDatabase } from '../db/connection.js';
import { connectDatabase, redactUrl, withoutPassword } from '../db/database.js';
import { migrations } from '../db/migrations.js';
import { postgresMigrations } from '../db/migrations-postgres.js';
import { EMBEDDED_MOUNT } from '../storage/embedded.js';
import type { Storage } from '../storage/storage.js';

export interface CheckResult {
  name: string;
  ok: boolean;
  /** what is wrong, or for a passing check a note worth knowing */
  detail?: string;
  fix?: string;
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';

/**
 * What `s3-gallery doctor` checks, in order. Each check says what is wrong and how to fix it;
 * a check that depends on an earlier failure is skipped rather than failing twice.
 */
export async function runDoctor(config: Config, storage: Storage): Promise<CheckResult[]> {
  const results: CheckResult[] = [{ name: 'configuration', ok: true, detail: describeStorage(config) }];
  const embedded = !config.s3;

  results.push(
    config.database.kind === 'postgres'
      ? await checkPostgres(config.database.url)
      : checkDatabase(config.database.file),
  );

  const reachable = await check(
    'bucket reachable',
    embedded
      ? `the embedded store is served by the app: start it (npm start) on PORT ${config.port}, then run doctor again`
      : 'check S3_ENDPOINT, S3_REGION, S3_BUCKET and the credentials; the bucket must exist',
    () => storage.ping(),
  );
  results.push(reachable);
  if (!reachable.ok) return results;

  const key = `users/.doctor/${randomUUID()}`;
  const body = Buffer.from(`s3-gallery doctor ${new Date().toISOString()}`);
  let objectUrl: string | undefined;
  results.push(
    await check(
      'credentials can put, get and delete under users/',
      'give the credentials s3:PutObject, s3:GetObject and s3:DeleteObject on users/* (npx s3-gallery print:iam-policy)',
      async () => {
        await storage.put(key, body, 'text/plain');
        const back = Buffer.from(await storage.getRange(key, 0, body.length - 1));
        if (!back.equals(body)) throw new Error('read back different bytes');
        objectUrl = (await storage.presignGet({ key, ttlSeconds: 60 })).split('?')[0];
      },
    ),
  );

  const post = await storage.presignPost({ key, maxBytes: 1, contentTypePrefix: 'image/', ttlSeconds: 60 });
  results.push(await checkNotPublic(post.url, objectUrl));
  const deleted = await check('credentials can delete', 'allow s3:DeleteObject on users/*', async () => {
    await storage.delete(key);
    if (await storage.head(key)) throw new Error('the object is still there after deleting it');
  });
  // Reported only when it fails: the put/get/delete check above already names deleting.
  if (!deleted.ok) results.push(deleted);

  if (embedded) {
    results.push({
      name: 'CORS allows the app origin',
      ok: true,
      detail: 'same origin as the app: not needed',
    });
  } else {
    results.push(await checkCors(post.url, config.appOrigin));
  }
  return results;
}

/** One check: passes when `work` does, otherwise fails with what went wrong and `fix`. */
async function check(name: string, fix: string, work: () => Promise<unknown>): Promise<CheckResult> {
  try {
    await work();
    return { name, ok: true };
  } catch (err) {
    return { name, ok: false, detail: message(err), fix };
  }
}

function describeStorage(config: Config): string {
  return config.s3
    ? `bucket ${config.s3.bucket} at ${config.s3.endpoint}, app origin ${config.appOrigin}`
    : `embedded store at ${config.appOrigin}${EMBEDDED_MOUNT}, data in ${config.dataDir}`;
}

function checkDatabase(file: string): CheckResult {
  const name = 'database';
  if (!existsSync(file)) {
    return {
      name,
      ok: false,
      detail: `${file} does not exist`,
      fix: 'start the app once, or check DATA_DIR',
    };
  }
  try {
    const db = openDatabase(file);
    try {
      const integrity = db.pragma('quick_check', { simple: true });
      if (integrity !== 'ok') {
        return {
          name,
          ok: false,
          detail: `quick_check: ${integrity}`,
          fix: 'restore DATA_DIR from a backup',
        };
      }
      const version = db.pragma('user_version', { simple: true }) as number;
      return { name, ok: true, detail: `${file}, schema ${version} of ${migrations.length}` };
    } finally {
      db.close();
    }
  } catch (err) {
    return { name, ok: false, detail: message(err), fix: 'check that DATA_DIR is writable by this user' };
  }
}

async function checkPostgres(url: string): Promise<CheckResult> {
  const name = 'database';
  const where = redactUrl(url);
  try {
    const database = await connectDatabase({ url });
    try {
      const { rows } = await sql<{ version: number }>`SELECT version FROM schema_version`.execute(database.q);
      return {
        name,
        ok: true,
        detail: `PostgreSQL at ${where}, schema ${rows[0]?.version ?? 0} of ${postgresMigrations.length}`,
      };
    } finally {
      await database.close();
    }
  } catch (err) {
    return {
      name,
      ok: false,
      detail: `PostgreSQL at ${where}: ${withoutPassword(message(err), new URL(url))}`,
      fix: 'check DATABASE_URL (host, port, user, password, database) and that this machine may connect',
    };
  }
}

/** Anonymous requests must be refused: images are only ever reached through signed URLs. */
async function checkNotPublic(bucketUrl: string, objectUrl: string | undefined): Promise<CheckResult> {
  const name = 'bucket is not public';
  const urls = [`${bucketUrl.replace(/\/$/, '')}/?list-type=2`, ...(objectUrl ? [objectUrl] : [])];
  try {
    for (const url of urls) {
      const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
      await res.body?.cancel();
      if (res.ok) {
        return {
          name,
          ok: false,
          detail: `an anonymous GET of ${url} answered ${res.status}`,
          fix: 'turn on "Block all public access" and remove any public bucket policy or ACL',
        };
      }
    }
    return { name, ok: true };
  } catch (err) {
    return {
      name,
      ok: false,
      detail: message(err),
      fix: 'check that the public endpoint is reachable from here',
    };
  }
}

/** The preflight a browser sends before posting an upload from the app's pages. */
async function checkCors(bucketUrl: string, appOrigin: string): Promise<CheckResult> {
  const name = 'CORS allows the app origin';
  const fix = 'set the bucket CORS from: npx s3-gallery print:cors';
  try {
    const res = await fetch(bucketUrl, {
      method: 'OPTIONS',
      headers: { Origin: appOrigin, 'Access-Control-Request-Method': 'POST' },
      signal: AbortSignal.timeout(10_000),
    });
    await res.body?.cancel();
    const allowed = res.headers.get('access-control-allow-origin');
    if (res.ok && (allowed === appOrigin || allowed === '*')) return { name, ok: true };
    return {
      name,
      ok: false,
      detail: `a POST preflight from ${appOrigin} answered ${res.status}, allow-origin ${allowed ?? 'none'}`,
      fix,
    };
  } catch (err) {
    return { name, ok: false, detail: message(err), fix };
  }
}
