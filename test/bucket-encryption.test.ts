import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { bucketSettingChecks } from '../src/services/doctor.js';
import { createStorage } from '../src/storage/s3.js';
import { makeTestApp, signUp, type TestApp } from './support/app.js';
import { makeJpeg } from './support/images.js';
import { startTestStore } from './support/store.js';
import { startStoreInterceptor } from './support/store-interceptor.js';
import { type Policy, postToBucket } from './support/uploads.js';

const NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"';
const xml = (body: string) => ({ status: 200, body: `<?xml version="1.0" encoding="UTF-8"?>\n${body}` });
const s3Error = (status: number, code: string) => ({
  status,
  body: `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${code}</Message><RequestId>R</RequestId></Error>`,
});

/** The policy document a form carries, decoded. */
const policyOf = (fields: Record<string, string>) =>
  JSON.parse(Buffer.from(fields.Policy ?? fields.policy ?? '', 'base64').toString('utf8')) as {
    conditions: unknown[];
  };

describe('S3_SSE: every write asks the bucket to encrypt', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await makeTestApp({
      env: { S3_SSE: 'aws:kms', S3_SSE_KMS_KEY_ID: 'arn:aws:kms:eu-west-1:111122223333:key/k1' },
    });
  });
  afterAll(() => t.close());

  it('signs the encryption fields into every upload form, and the bucket sees them on the post', async () => {
    const admin = t.client();
    await signUp(admin, 'admin@example.com');
    const photo = await makeJpeg();
    const res = await admin.postJson('/uploads/presign', { name: 'a.jpg', size: photo.length });
    expect(res.status).toBe(200);
    const policy = (await res.json()) as Policy;
    const { fields } = policy;
    expect(fields['x-amz-server-side-encryption']).toBe('aws:kms');
    expect(fields['x-amz-server-side-encryption-aws-kms-key-id']).toBe(
      'arn:aws:kms:eu-west-1:111122223333:key/k1',
    );
    expect(policyOf(fields).conditions).toContainEqual({ 'x-amz-server-side-encryption': 'aws:kms' });
    expect(policyOf(fields).conditions).toContainEqual({
      'x-amz-server-side-encryption-aws-kms-key-id': 'arn:aws:kms:eu-west-1:111122223333:key/k1',
    });
    // The embedded store stands in for the bucket: it implements no encryption, and says so (501)
    // rather than store the file unencrypted, which shows the fields arrive with the file.
    const posted = await postToBucket(policy, photo, 'image/jpeg', 'a.jpg');
    expect(posted.status).toBe(501);
    expect(await posted.text()).toContain('encryption');
  });

  it('asks for it on every PutObject and CopyObject', async () => {
    const storage = t.services.storage;
    await expect(storage.put('users/x/a.txt', Buffer.from('a'), 'text/plain')).rejects.toMatchObject({
      name: 'NotImplemented',
    });
    await t.store.storage.put('users/x/b.txt', Buffer.from('b'), 'text/plain');
    await expect(storage.copy('users/x/b.txt', 'users/x/c.txt')).rejects.toMatchObject({
      name: 'NotImplemented',
    });
    expect(await t.store.storage.head('users/x/a.txt')).toBeNull();
    expect(await t.store.storage.head('users/x/c.txt')).toBeNull();
  });

  it('is refused without an external bucket, and a KMS key without aws:kms', () => {
    expect(() => loadConfig({ DATA_DIR: '/tmp/x', S3_SSE: 'AES256' })).toThrow(ConfigError);
    expect(() =>
      loadConfig({
        DATA_DIR: '/tmp/x',
        S3_ENDPOINT: 'https://s3.eu-west-1.amazonaws.com',
        S3_BUCKET: 'bucket',
        S3_SSE: 'AES256',
        S3_SSE_KMS_KEY_ID: 'k',
      }),
    ).toThrow(/S3_SSE_KMS_KEY_ID/);
    expect(() =>
      loadConfig({
        DATA_DIR: '/tmp/x',
        S3_ENDPOINT: 'https://s3.example',
        S3_BUCKET: 'bucket',
        S3_SSE: 'DES',
      }),
    ).toThrow(ConfigError);
  });
});

/**
 * doctor's report of the bucket's own settings, from answers shaped as AWS S3 gives them (an
 * interceptor answers the three GETs in front of a real store).
 */
describe('the bucket settings doctor reports', () => {
  let store: Awaited<ReturnType<typeof startTestStore>>;
  let proxy: Awaited<ReturnType<typeof startStoreInterceptor>>;
  let answers: Record<'encryption' | 'versioning' | 'publicAccessBlock', { status: number; body: string }>;

  beforeAll(async () => {
    store = await startTestStore();
    proxy = await startStoreInterceptor();
    proxy.forwardTo(store.origin);
    proxy.onRequest((req) => {
      const query = new URL(req.url ?? '/', 'http://x').searchParams;
      for (const name of ['encryption', 'versioning', 'publicAccessBlock'] as const)
        if (query.has(name)) return { answer: answers[name] };
      return undefined;
    });
  });
  afterAll(async () => {
    await proxy.close();
    await store.close();
  });

  const settings = () =>
    createStorage({
      endpoint: proxy.endpoint,
      region: store.region,
      bucket: store.bucket,
      credentials: store.credentials,
      forcePathStyle: true,
    }).bucketSettings();
  const byName = (checks: ReturnType<typeof bucketSettingChecks>) =>
    Object.fromEntries(checks.map((c) => [c.name, c]));

  it('reads a KMS default rule, versioning on and a public-access block with one switch off', async () => {
    answers = {
      encryption: xml(
        `<ServerSideEncryptionConfiguration ${NS}><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm><KMSMasterKeyID>arn:aws:kms:us-east-1:111122223333:key/abcd</KMSMasterKeyID></ApplyServerSideEncryptionByDefault><BucketKeyEnabled>true</BucketKeyEnabled></Rule></ServerSideEncryptionConfiguration>`,
      ),
      versioning: xml(`<VersioningConfiguration ${NS}><Status>Enabled</Status></VersioningConfiguration>`),
      publicAccessBlock: xml(
        `<PublicAccessBlockConfiguration ${NS}><BlockPublicAcls>true</BlockPublicAcls><IgnorePublicAcls>true</IgnorePublicAcls><BlockPublicPolicy>false</BlockPublicPolicy><RestrictPublicBuckets>true</RestrictPublicBuckets></PublicAccessBlockConfiguration>`,
      ),
    };
    const read = await settings();
    expect(read.encryption).toEqual({
      value: { algorithm: 'aws:kms', kmsKeyId: 'arn:aws:kms:us-east-1:111122223333:key/abcd' },
    });
    expect(read.versioning).toEqual({ value: 'Enabled' });
    const checks = byName(bucketSettingChecks(read, undefined));
    expect(checks['encryption at rest']).toMatchObject({
      ok: true,
      detail: expect.stringContaining('default aws:kms'),
    });
    expect(checks.versioning?.detail).toContain('stays in the bucket as an old version');
    expect(checks['public access block']).toMatchObject({ ok: false, detail: 'off: BlockPublicPolicy' });
  });

  it('fails a bucket that stores unencrypted with no block, and names what it could not read', async () => {
    answers = {
      encryption: s3Error(404, 'ServerSideEncryptionConfigurationNotFoundError'),
      versioning: xml(`<VersioningConfiguration ${NS}/>`),
      publicAccessBlock: s3Error(404, 'NoSuchPublicAccessBlockConfiguration'),
    };
    let checks = byName(bucketSettingChecks(await settings(), undefined));
    expect(checks['encryption at rest']).toMatchObject({
      ok: false,
      fix: expect.stringContaining('S3_SSE=AES256'),
    });
    expect(checks.versioning).toMatchObject({ ok: true, detail: 'off: a delete removes the object' });
    expect(checks['public access block']).toMatchObject({
      ok: false,
      detail: expect.stringContaining('none set'),
    });
    // With S3_SSE the app encrypts each object itself: no default rule is needed.
    checks = byName(bucketSettingChecks(await settings(), { type: 'AES256' }));
    expect(checks['encryption at rest']).toMatchObject({
      ok: true,
      detail: 'S3_SSE=AES256 on every write; no default rule',
    });

    answers = {
      encryption: s3Error(403, 'AccessDenied'),
      versioning: s3Error(501, 'NotImplemented'),
      publicAccessBlock: s3Error(403, 'AccessDenied'),
    };
    checks = byName(bucketSettingChecks(await settings(), undefined));
    expect(checks['encryption at rest']?.detail).toContain('allow s3:GetEncryptionConfiguration');
    expect(checks.versioning?.detail).toBe('not reported by this bucket (NotImplemented)');
    expect(checks['public access block']).toMatchObject({ ok: true });
  });
});
