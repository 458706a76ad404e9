import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { sql } from 'kysely';
import type { Config } from '../config.js';
import { openDatabase } from '../db/connection.js';
import { connectDatabase, redactUrl, withoutPassword } from '../db/database.js';
import { migrations } from '../db/migrations.js';
import { postgresMigrations } from '../db/migrations-postgres.js';
import { EMBEDDED_MOUNT } from '../storage/embedded.js';
import type { BucketSettings, Storage, StorageEncryption } from '../storage/storage.js';

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
  results.push(
    await check(
      'credentials can send large uploads in parts',
      'give the credentials s3:AbortMultipartUpload and s3:ListMultipartUploadParts on users/* (npx s3-gallery print:iam-policy)',
      async () => {
        const uploadId = await storage.startMultipart(key, 'application/octet-stream');
        try {
          if ((await storage.listParts(key, uploadId)) === null)
            throw new Error('the bucket lost the multipart upload it had just started');
        } finally {
          await storage.abortMultipart(key, uploadId);
        }
      },
    ),
  );

  if (embedded) {
    results.push({
      name: 'CORS allows the app origin',
      ok: true,
      detail: 'same origin as the app: not needed',
    });
    results.push({
      name: 'bucket settings',
      ok: true,
      detail: `the embedded store: objects are files in ${config.dataDir} (encrypt that disk to encrypt them), one version each, never public`,
    });
  } else {
    results.push(await checkCors(post.url, config.appOrigin));
    results.push(...bucketSettingChecks(await storage.bucketSettings(), config.s3?.encryption));
  }
  return results;
}

/** Why a setting could not be read, and what would let doctor read it. */
const unread = (error: string, permission: string) =>
  error === 'AccessDenied'
    ? `not readable with these credentials (AccessDenied): allow ${permission} to see it`
    : `not reported by this bucket (${error})`;

/**
 * The bucket's default encryption, versioning and public-access block, as AWS S3 reports them
 * (other stores may not: that is said, not failed). Failing: objects written unencrypted (no
 * S3_SSE and no default rule), and a public-access block missing or partly off.
 */
export function bucketSettingChecks(
  settings: BucketSettings,
  asked: StorageEncryption | undefined,
): CheckResult[] {
  const results: CheckResult[] = [];
  const sse = asked
    ? `S3_SSE=${asked.type}${asked.type === 'aws:kms' && asked.kmsKeyId ? ` (key ${asked.kmsKeyId})` : ''} on every write`
    : null;
  const { encryption, versioning, publicAccessBlock } = settings;
  if ('error' in encryption) {
    results.push({
      name: 'encryption at rest',
      ok: true,
      detail: `${sse ?? 'S3_SSE unset'}; the default rule is ${unread(encryption.error, 's3:GetEncryptionConfiguration')}`,
    });
  } else if (encryption.value === null && !sse) {
    results.push({
      name: 'encryption at rest',
      ok: false,
      detail: 'the bucket has no default encryption and S3_SSE is unset: objects are stored unencrypted',
      fix: 'set S3_SSE=AES256 (or aws:kms with S3_SSE_KMS_KEY_ID), or give the bucket a default encryption rule',
    });
  } else {
    const rule = encryption.value
      ? `default ${encryption.value.algorithm}${encryption.value.kmsKeyId ? ` (key ${encryption.value.kmsKeyId})` : ''}`
      : 'no default rule';
    results.push({ name: 'encryption at rest', ok: true, detail: sse ? `${sse}; ${rule}` : rule });
  }
  results.push({
    name: 'versioning',
    ok: true,
    detail:
      'error' in versioning
        ? unread(versioning.error, 's3:GetBucketVersioning')
        : versioning.value === 'Enabled'
          ? 'enabled: a deleted image stays in the bucket as an old version until a lifecycle rule expires it (add one to really delete)'
          : versioning.value === 'Suspended'
            ? 'suspended: objects written while it was on keep their old versions'
            : 'off: a delete removes the object',
  });
  if ('error' in publicAccessBlock) {
    results.push({
      name: 'public access block',
      ok: true,
      detail: unread(publicAccessBlock.error, 's3:GetBucketPublicAccessBlock'),
    });
  } else {
    const off = publicAccessBlock.value
      ? Object.entries(publicAccessBlock.value)
          .filter(([, on]) => !on)
          .map(([name]) => name)
      : null;
    results.push(
      off && off.length === 0
        ? { name: 'public access block', ok: true, detail: 'all four switches on' }
        : {
            name: 'public access block',
            ok: false,
            detail: off
              ? `off: ${off.join(', ')}`
              : 'none set: a bucket policy or ACL could make images public',
            fix: `aws s3api put-public-access-block --bucket <bucket> --public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true`,
          },
    );
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

/**
 * The preflights a browser sends before it uploads from the app's pages: a form's POST, and the PUT
 * of each part of a large file.
 */
async function checkCors(bucketUrl: string, appOrigin: string): Promise<CheckResult> {
  const name = 'CORS allows the app origin';
  const fix = 'set the bucket CORS from: npx s3-gallery print:cors';
  try {
    for (const method of ['POST', 'PUT']) {
      const res = await fetch(bucketUrl, {
        method: 'OPTIONS',
        headers: { Origin: appOrigin, 'Access-Control-Request-Method': method },
        signal: AbortSignal.timeout(10_000),
      });
      await res.body?.cancel();
      const allowed = res.headers.get('access-control-allow-origin');
      if (!res.ok || (allowed !== appOrigin && allowed !== '*')) {
        return {
          name,
          ok: false,
          detail: `a ${method} preflight from ${appOrigin} answered ${res.status}, allow-origin ${allowed ?? 'none'}`,
          fix,
        };
      }
    }
    return { name, ok: true };
  } catch (err) {
    return { name, ok: false, detail: message(err), fix };
  }
}
