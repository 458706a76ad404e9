import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import path from 'node:path';
import {
  CopyObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnStandalone } from './support.js';

type Standalone = Awaited<ReturnType<typeof spawnStandalone>>;

let store: Standalone;
let client: S3Client;
let Bucket: string;

beforeAll(async () => {
  store = await spawnStandalone({ bucket: 'photos' });
  Bucket = store.bucket;
  client = new S3Client({
    endpoint: store.endpoint,
    region: store.region,
    credentials: store.credentials,
    forcePathStyle: true,
  });
}, 30_000);
afterAll(() => store.stop());

/** A DeleteObjects request with the given body, signed as the SDK signs any request, MD5 included. */
async function deleteWithBody(body: string) {
  const url = `${store.endpoint}/${Bucket}?delete`;
  const { SignatureV4 } = await import('@smithy/signature-v4');
  const { Hash } = await import('@smithy/hash-node');
  const { HttpRequest } = await import('@smithy/protocol-http');
  const u = new URL(url);
  const signer = new SignatureV4({
    service: 's3',
    region: store.region,
    credentials: store.credentials,
    sha256: Hash.bind(null, 'sha256'),
  });
  const signed = await signer.sign(
    new HttpRequest({
      method: 'POST',
      protocol: 'http:',
      hostname: u.hostname,
      port: Number(u.port),
      path: u.pathname,
      query: { delete: '' },
      headers: {
        host: u.host,
        'content-md5': createHash('md5').update(body).digest('base64'),
        'x-amz-content-sha256': createHash('sha256').update(body).digest('hex'),
      },
      body,
    }),
  );
  return fetch(url, { method: 'POST', headers: signed.headers, body });
}

/** Each body gets S3's 400 MalformedXML. */
async function expectMalformed(bodies: string[]) {
  for (const body of bodies) {
    const res = await deleteWithBody(body);
    expect(res.status, body).toBe(400);
    expect(await res.text()).toContain('<Code>MalformedXML</Code>');
  }
}

describe('s3-store as a command of its own', () => {
  it('prints its endpoint and credentials, and keeps them in a file only its owner can read', () => {
    expect(store.printed.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(store.bucket).toBe('photos');
    const saved = store.credentialsFile();
    expect(saved).toMatchObject({ ...store.credentials, bucket: 'photos', region: 'us-east-1' });
    expect(statSync(path.join(store.dir, 'credentials.json')).mode & 0o777).toBe(0o600);
    expect(store.printed.try).toContain(`s3 ls s3://photos`);
  });

  it('serves the AWS SDK: put, get, list with a delimiter, copy', async () => {
    await client.send(
      new PutObjectCommand({ Bucket, Key: 'a/one.txt', Body: 'one', ContentType: 'text/plain' }),
    );
    await client.send(new PutObjectCommand({ Bucket, Key: 'a/b/two.txt', Body: 'two' }));
    await client.send(
      new CopyObjectCommand({ Bucket, Key: 'a/copy.txt', CopySource: `${Bucket}/a/one.txt` }),
    );
    const got = await client.send(new GetObjectCommand({ Bucket, Key: 'a/copy.txt' }));
    expect(await got.Body?.transformToString()).toBe('one');
    expect(got.ContentType).toBe('text/plain');
    const listed = await client.send(new ListObjectsV2Command({ Bucket, Prefix: 'a/', Delimiter: '/' }));
    expect(listed.Contents?.map((c) => c.Key)).toEqual(['a/copy.txt', 'a/one.txt']);
    expect(listed.CommonPrefixes?.map((p) => p.Prefix)).toEqual(['a/b/']);
  });

  it('deletes many keys at once, whatever characters the XML had to escape in them', async () => {
    const keys = [
      'x/a&b',
      'x/<tag>',
      'x/"quoted" \'single\'',
      'x/ leading and trailing ',
      'x/ünïcödé ✓',
      'x/&amp;',
    ];
    for (const Key of keys) await client.send(new PutObjectCommand({ Bucket, Key, Body: Key }));
    const res = await client.send(
      new DeleteObjectsCommand({ Bucket, Delete: { Objects: keys.map((Key) => ({ Key })) } }),
    );
    expect(res.Deleted?.map((d) => d.Key).sort()).toEqual([...keys].sort());
    expect(res.Errors ?? []).toEqual([]);
    const left = await client.send(new ListObjectsV2Command({ Bucket, Prefix: 'x/' }));
    expect(left.KeyCount).toBe(0);
    // Quiet: only errors are reported.
    await client.send(new PutObjectCommand({ Bucket, Key: 'x/q', Body: 'q' }));
    const quiet = await client.send(
      new DeleteObjectsCommand({
        Bucket,
        Delete: { Objects: [{ Key: 'x/q' }, { Key: '../up' }], Quiet: true },
      }),
    );
    expect(quiet.Deleted ?? []).toEqual([]);
    expect(quiet.Errors?.map((e) => [e.Key, e.Code])).toEqual([['../up', 'InvalidArgument']]);
  });

  it('refuses malformed and entity-laden XML with MalformedXML, and keeps serving', async () => {
    await expectMalformed([
      '<Delete><Object><Key>a</Key></Object>',
      'not xml at all',
      '<Other><Object><Key>a</Key></Object></Other>',
      '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><Delete><Object><Key>&b;</Key></Object></Delete>',
    ]);
    const ok = await deleteWithBody('<Delete><Object><Key>never-there</Key></Object></Delete>');
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('<Deleted><Key>never-there</Key></Deleted>');
  });

  it('deletes exactly the keys named: a reference it cannot store is refused for that key, never dropped', async () => {
    for (const Key of ['ab', 'victim', 'a\u00a0b'])
      await client.send(new PutObjectCommand({ Bucket, Key, Body: Key }));
    const res = await deleteWithBody(
      '<Delete><Object><Key>a&#1;b</Key></Object><Object><Key>vic&#0;tim</Key></Object><Object><Key>a&nbsp;b</Key></Object></Delete>',
    );
    expect(res.status).toBe(200);
    const text = await res.text();
    // The control characters reach the key check, which refuses those two keys.
    expect(text.match(/<Code>InvalidArgument<\/Code>/g)).toHaveLength(2);
    // An entity XML does not define is no entity: the key is taken as written, which names nothing here.
    expect(text).toContain('<Deleted><Key>a&#38;nbsp;b</Key></Deleted>');
    const left = await client.send(new ListObjectsV2Command({ Bucket }));
    expect(left.Contents?.map((c) => c.Key)).toEqual(expect.arrayContaining(['ab', 'victim', 'a\u00a0b']));
    await expectMalformed([
      '<Delete><Object><Key>ab</Key><Key>victim</Key></Object></Delete>',
      '<Delete><Object>ab</Object></Delete>',
      '<Delete><Object><Key><![CDATA[ab]]></Key></Object></Delete>',
      '<Delete><Quiet>true</Quiet><Quiet>false</Quiet><Object><Key>ab</Key></Object></Delete>',
      '<Delete><Object><Key>&#x110000;</Key></Object></Delete>',
    ]);
    const still = await client.send(new ListObjectsV2Command({ Bucket }));
    expect(still.Contents?.map((c) => c.Key)).toEqual(expect.arrayContaining(['ab', 'victim']));
  });

  it('answers any DeleteObjects body with 200 or 400, never an error of its own, and stays up', async () => {
    const piece = fc.constantFrom(
      '<Delete>',
      '</Delete>',
      '<Object>',
      '</Object>',
      '<Key>',
      '</Key>',
      '<Quiet>true</Quiet>',
      '&amp;',
      '&#x41;',
      '&#0;',
      '&bogus;',
      '<![CDATA[k]]>',
      '<!-- c -->',
      'k',
      ' ',
      '<',
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(piece, fc.string({ maxLength: 8 })), { maxLength: 30 }),
        async (parts) => {
          const res = await deleteWithBody(parts.join(''));
          expect([200, 400]).toContain(res.status);
          await res.arrayBuffer();
        },
      ),
      { numRuns: 150 },
    );
    const after = await client.send(new ListObjectsV2Command({ Bucket, Prefix: 'a/' }));
    expect(after.KeyCount).toBe(3);
    // The fuzzed bodies named none of these keys, so none may be gone.
    const kept = await client.send(new ListObjectsV2Command({ Bucket }));
    expect(kept.Contents?.map((c) => c.Key)).toEqual(expect.arrayContaining(['ab', 'victim']));
  });

  it('refuses what it does not implement, and anonymous callers, as S3 does', async () => {
    const anonymous = await fetch(`${store.endpoint}/${Bucket}?list-type=2`);
    expect(anonymous.status).toBe(403);
    expect(await anonymous.text()).toContain('<Code>AccessDenied</Code>');
    const wrongBucket = await fetch(`${store.endpoint}/other/key`);
    expect(wrongBucket.status).toBe(404);
  });

  it('stops on SIGTERM with exit code 0', async () => {
    store.child.kill('SIGTERM');
    expect(await store.exited).toBe(0);
  });
});
