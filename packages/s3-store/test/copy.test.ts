import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import {
  CopyObjectCommand,
  type CopyObjectCommandInput,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStore, type TestStore } from './support.js';

let store: TestStore;
let client: S3Client;
beforeAll(async () => {
  store = await startStore();
  client = store.client;
  await store.storage.put('self', Buffer.from('me'), 'text/plain');
});
afterAll(() => store.close());

const copy = (input: Omit<CopyObjectCommandInput, 'Bucket'>) =>
  client.send(new CopyObjectCommand({ Bucket: store.bucket, ...input }));
const head = (Key: string) => client.send(new HeadObjectCommand({ Bucket: store.bucket, Key }));
const tempFiles = () => readdirSync(path.join(store.rootDir, 'tmp'));

describe('CopyObject in the embedded store', () => {
  it('keeps the source type and metadata by default and ignores new ones; REPLACE takes the request’s', async () => {
    await client.send(
      new PutObjectCommand({
        Bucket: store.bucket,
        Key: 'meta/source',
        Body: 'abc',
        ContentType: 'image/png',
        Metadata: { owner: 'u1' },
      }),
    );
    await copy({ Key: 'meta/kept', CopySource: `${store.bucket}/meta/source`, Metadata: { owner: 'u2' } });
    const kept = await head('meta/kept');
    expect([kept.ContentType, kept.Metadata]).toEqual(['image/png', { owner: 'u1' }]);

    await copy({
      Key: 'meta/replaced',
      CopySource: `/${store.bucket}/meta/source`,
      MetadataDirective: 'REPLACE',
      ContentType: 'image/jpeg',
      Metadata: { owner: 'u2' },
    });
    const replaced = await head('meta/replaced');
    expect([replaced.ContentType, replaced.Metadata, replaced.ContentLength]).toEqual([
      'image/jpeg',
      { owner: 'u2' },
      3,
    ]);
  });

  it('refuses to copy an object onto itself unless the metadata is replaced', async () => {
    await expect(copy({ Key: 'self', CopySource: `${store.bucket}/self` })).rejects.toMatchObject({
      name: 'InvalidRequest',
      message: expect.stringMatching(/copy an object to itself/),
      $metadata: { httpStatusCode: 400 },
    });
    await copy({
      Key: 'self',
      CopySource: `${store.bucket}/self`,
      MetadataDirective: 'REPLACE',
      ContentType: 'text/markdown',
    });
    expect((await store.storage.head('self'))?.contentType).toBe('text/markdown');
    expect(Buffer.from(await store.storage.getRange('self', 0, 10)).toString()).toBe('me');
  });

  it('copies an empty object', async () => {
    await store.storage.put('empty', Buffer.alloc(0), 'text/plain');
    const res = await copy({ Key: 'empty-copy', CopySource: `${store.bucket}/empty` });
    expect(res.CopyObjectResult?.ETag).toBe('"d41d8cd98f00b204e9800998ecf8427e"');
    expect(res.CopyObjectResult?.LastModified).toBeInstanceOf(Date);
    expect((await store.storage.head('empty-copy'))?.size).toBe(0);
  });

  const refusals: [string, Omit<CopyObjectCommandInput, 'Bucket'>, string, number][] = [
    [
      'a version of the source',
      { Key: 't', CopySource: 'gallery/self?versionId=abc' },
      'NotImplemented',
      501,
    ],
    ['another bucket', { Key: 't', CopySource: 'other/self' }, 'NoSuchBucket', 404],
    ['a source without a key', { Key: 't', CopySource: 'gallery/' }, 'InvalidArgument', 400],
    ['a source that is only a bucket', { Key: 't', CopySource: 'gallery' }, 'InvalidArgument', 400],
    ['a source key with a bad escape', { Key: 't', CopySource: 'gallery/a%ZZ' }, 'InvalidArgument', 400],
    ['a source key that climbs out', { Key: 't', CopySource: 'gallery/a/../../x' }, 'InvalidArgument', 400],
    [
      'an unknown metadata directive',
      { Key: 't', CopySource: 'gallery/self', MetadataDirective: 'MERGE' as 'COPY' },
      'InvalidArgument',
      400,
    ],
    [
      'a source whose ETag matches If-None-Match',
      { Key: 't', CopySource: 'gallery/self', CopySourceIfNoneMatch: '*' },
      'PreconditionFailed',
      412,
    ],
    [
      'a source modified after If-Unmodified-Since',
      { Key: 't', CopySource: 'gallery/self', CopySourceIfUnmodifiedSince: new Date('2000-01-01') },
      'PreconditionFailed',
      412,
    ],
  ];
  for (const [label, input, name, status] of refusals) {
    it(`refuses ${label} with ${status} ${name} and writes nothing`, async () => {
      await expect(copy(input)).rejects.toMatchObject({ name, $metadata: { httpStatusCode: status } });
      await expect(head('t')).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } });
      expect(tempFiles()).toEqual([]);
    });
  }

  it('answers a disk fault (its temp dir gone) as the server error it is, not as a race to retry', async () => {
    await store.storage.put('fault/source', Buffer.from('abc'), 'text/plain');
    const tmp = path.join(store.rootDir, 'tmp');
    rmSync(tmp, { recursive: true });
    try {
      const err = await copy({ Key: 'fault/copy', CopySource: `${store.bucket}/fault/source` }).catch(
        (e) => e,
      );
      expect(err.$metadata?.httpStatusCode).toBe(500);
      expect(err.name).not.toBe('OperationAborted');
    } finally {
      mkdirSync(tmp);
    }
    // With its temp dir back, the same copy works.
    await copy({ Key: 'fault/copy', CopySource: `${store.bucket}/fault/source` });
    expect((await head('fault/copy')).ContentLength).toBe(3);
  });

  it('copies one whole version when the source is replaced during the copy', async () => {
    const size = 8 * 1024 * 1024;
    const versions = [Buffer.alloc(size, 1), Buffer.alloc(size, 2), Buffer.alloc(size, 3)];
    const md5s = versions.map((v) => createHash('md5').update(v).digest('hex'));
    await store.storage.put('race/source', versions[0] as Buffer, 'application/octet-stream');
    const copies = [1, 2, 3, 4].map((i) => store.storage.copy('race/source', `race/copy${i}`));
    const puts = [1, 2].map((i) =>
      store.storage.put('race/source', versions[i] as Buffer, 'application/octet-stream'),
    );
    await Promise.all([...copies, ...puts]);
    for (const i of [1, 2, 3, 4]) {
      const bytes = Buffer.from(await store.storage.getRange(`race/copy${i}`, 0, size));
      const md5 = createHash('md5').update(bytes).digest('hex');
      expect(md5s).toContain(md5);
      expect((await store.storage.head(`race/copy${i}`))?.etag).toBe(`"${md5}"`);
    }
    expect(tempFiles()).toEqual([]);
  });
});
