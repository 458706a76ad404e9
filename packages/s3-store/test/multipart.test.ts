import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetBucketAclCommand,
  GetBucketLocationCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsCommand,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStore, type TestStore } from './support.js';

const MiB = 1024 * 1024;
const md5 = (b: Buffer | string) => createHash('md5').update(b).digest('hex');

let store: TestStore;
let client: S3Client;
let Bucket: string;
beforeAll(async () => {
  store = await startStore();
  // As the AWS CLI and boto3 send parts: no flexible checksums (the store takes CRC32 too).
  client = new S3Client({
    endpoint: store.endpoint,
    region: store.region,
    credentials: store.credentials,
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  Bucket = store.bucket;
});
afterAll(() => store.close());

/** The S3 error a call failed with: its status and code. */
async function refusal(call: Promise<unknown>): Promise<{ status: number; code: string }> {
  try {
    await call;
  } catch (err) {
    if (err instanceof S3ServiceException)
      return { status: err.$metadata.httpStatusCode ?? 0, code: err.name };
    throw err;
  }
  throw new Error('the call succeeded');
}

async function create(Key: string, o: { ContentType?: string; Metadata?: Record<string, string> } = {}) {
  const made = await client.send(new CreateMultipartUploadCommand({ Bucket, Key, ...o }));
  expect(made.Bucket).toBe(Bucket);
  expect(made.Key).toBe(Key);
  return made.UploadId as string;
}

const part = (Key: string, UploadId: string, PartNumber: number, Body: Buffer) =>
  client.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body }));

const complete = (Key: string, UploadId: string, Parts: { PartNumber: number; ETag: string }[]) =>
  client.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts } }));

async function read(Key: string): Promise<Buffer> {
  const got = await client.send(new GetObjectCommand({ Bucket, Key }));
  return Buffer.from(
    await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
  );
}

describe('multipart uploads', () => {
  it('joins parts into one object with S3’s multipart ETag, type and metadata from the start', async () => {
    const Key = 'mp/photo album.bin';
    const UploadId = await create(Key, { ContentType: 'image/jpeg', Metadata: { note: 'café' } });
    const a = Buffer.alloc(5 * MiB, 'a');
    const b = Buffer.from('b');
    // Parts may arrive out of order.
    const second = await part(Key, UploadId, 2, b);
    const first = await part(Key, UploadId, 1, a);
    expect(first.ETag).toBe('"79b281060d337b9b2b84ccf390adcf74"');
    expect(second.ETag).toBe(`"${md5(b)}"`);
    const listed = await client.send(new ListPartsCommand({ Bucket, Key, UploadId }));
    expect(listed.Parts?.map((p) => [p.PartNumber, p.Size])).toEqual([
      [1, 5 * MiB],
      [2, 1],
    ]);
    expect(listed.NextPartNumberMarker).toBe('2');
    const done = await complete(Key, UploadId, [
      { PartNumber: 1, ETag: first.ETag as string },
      // unquoted and upper case: compared as S3 compares them
      { PartNumber: 2, ETag: (second.ETag as string).replaceAll('"', '').toUpperCase() },
    ]);
    expect(done.ETag).toBe('"e5a8c5272b26fc10581a21089559b006-2"');
    expect(done.Key).toBe(Key);
    const got = await client.send(new GetObjectCommand({ Bucket, Key }));
    expect(got.ContentType).toBe('image/jpeg');
    expect(got.Metadata).toEqual({ note: 'café' });
    expect(got.ETag).toBe('"e5a8c5272b26fc10581a21089559b006-2"');
    expect((await read(Key)).equals(Buffer.concat([a, b]))).toBe(true);
    // The upload is gone: its parts with it.
    expect(await refusal(client.send(new ListPartsCommand({ Bucket, Key, UploadId })))).toEqual({
      status: 404,
      code: 'NoSuchUpload',
    });
    expect(readdirSync(path.join(store.rootDir, 'multipart'))).toEqual([]);
  });

  it('keeps the part sent last under a number, and only the parts listed', async () => {
    const Key = 'mp/replaced';
    const UploadId = await create(Key);
    const old = await part(Key, UploadId, 1, Buffer.from('old'));
    const now = await part(Key, UploadId, 1, Buffer.from('new'));
    await part(Key, UploadId, 2, Buffer.from('not listed'));
    expect(await refusal(complete(Key, UploadId, [{ PartNumber: 1, ETag: old.ETag as string }]))).toEqual({
      status: 400,
      code: 'InvalidPart',
    });
    const done = await complete(Key, UploadId, [{ PartNumber: 1, ETag: now.ETag as string }]);
    expect(done.ETag).toBe(`"${md5(Buffer.from(md5('new'), 'hex'))}-1"`);
    expect((await read(Key)).toString()).toBe('new');
  });

  it('refuses what S3 refuses, before joining anything', async () => {
    const Key = 'mp/refused';
    const UploadId = await create(Key);
    const p1 = await part(Key, UploadId, 1, Buffer.from('data'));
    const p2 = await part(Key, UploadId, 2, Buffer.from('more'));
    const cases: [{ PartNumber: number; ETag: string }[], number, string][] = [
      // every part but the last at least 5 MiB
      [
        [
          { PartNumber: 1, ETag: p1.ETag as string },
          { PartNumber: 2, ETag: p2.ETag as string },
        ],
        400,
        'EntityTooSmall',
      ],
      [
        [
          { PartNumber: 2, ETag: p2.ETag as string },
          { PartNumber: 1, ETag: p1.ETag as string },
        ],
        400,
        'InvalidPartOrder',
      ],
      [
        [
          { PartNumber: 1, ETag: p1.ETag as string },
          { PartNumber: 1, ETag: p1.ETag as string },
        ],
        400,
        'InvalidPartOrder',
      ],
      [[{ PartNumber: 3, ETag: p1.ETag as string }], 400, 'InvalidPart'],
      [[], 400, 'InvalidRequest'],
    ];
    for (const [parts, status, code] of cases) {
      expect(await refusal(complete(Key, UploadId, parts)), code).toEqual({ status, code });
    }
    for (const PartNumber of [0, 10001]) {
      expect(await refusal(part(Key, UploadId, PartNumber, Buffer.from('x'))), String(PartNumber)).toEqual({
        status: 400,
        code: 'InvalidArgument',
      });
    }
    expect(await refusal(part(Key, 'not-an-upload', 1, Buffer.from('x')))).toEqual({
      status: 404,
      code: 'NoSuchUpload',
    });
    // An upload is bound to its key.
    expect(await refusal(part('mp/other', UploadId, 1, Buffer.from('x')))).toEqual({
      status: 404,
      code: 'NoSuchUpload',
    });
    // Still there, whole: a single-part complete works.
    const done = await complete(Key, UploadId, [{ PartNumber: 1, ETag: p1.ETag as string }]);
    expect(done.ETag).toMatch(/-1"$/);
  });

  it('answers a broken Complete body with MalformedXML', async () => {
    const Key = 'mp/broken';
    const UploadId = await create(Key);
    const url = `${store.endpoint}/${Bucket}/${Key}?uploadId=${UploadId}`;
    const { SignatureV4 } = await import('@smithy/signature-v4');
    const { Hash } = await import('@smithy/hash-node');
    const signer = new SignatureV4({
      credentials: store.credentials,
      region: store.region,
      service: 's3',
      sha256: Hash.bind(null, 'sha256'),
    });
    const target = new URL(url);
    const body = '<CompleteMultipartUpload><Part>';
    const signed = await signer.sign({
      method: 'POST',
      protocol: 'http:',
      hostname: target.hostname,
      port: Number(target.port),
      path: target.pathname,
      query: { uploadId: UploadId },
      headers: { host: target.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
      body,
    });
    const res = await fetch(url, { method: 'POST', headers: signed.headers, body });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('<Code>MalformedXML</Code>');
  });

  it('aborts an upload: its parts go, and a later part or complete is told it does not exist', async () => {
    const Key = 'mp/aborted';
    const UploadId = await create(Key);
    const p1 = await part(Key, UploadId, 1, Buffer.from('x'));
    await client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId }));
    expect(await refusal(part(Key, UploadId, 2, Buffer.from('x')))).toEqual({
      status: 404,
      code: 'NoSuchUpload',
    });
    expect(await refusal(complete(Key, UploadId, [{ PartNumber: 1, ETag: p1.ETag as string }]))).toEqual({
      status: 404,
      code: 'NoSuchUpload',
    });
    expect(await refusal(client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId })))).toEqual({
      status: 404,
      code: 'NoSuchUpload',
    });
    expect(await refusal(read(Key))).toEqual({ status: 404, code: 'NoSuchKey' });
  });

  it('makes one object of two completes sent at once, and answers both, and a third later, the same', async () => {
    const Key = 'mp/twice';
    const UploadId = await create(Key);
    const p1 = await part(Key, UploadId, 1, Buffer.alloc(2 * MiB, 'z'));
    const parts = [{ PartNumber: 1, ETag: p1.ETag as string }];
    const [a, b] = await Promise.all([complete(Key, UploadId, parts), complete(Key, UploadId, parts)]);
    expect(a.ETag).toBe(b.ETag);
    // Sent again once done (its answer lost, say): the same answer, not NoSuchUpload.
    expect((await complete(Key, UploadId, parts)).ETag).toBe(a.ETag);
    expect((await read(Key)).length).toBe(2 * MiB);
  });

  it('lists the uploads in progress by key, and their parts from a marker', async () => {
    const keys = ['mpl/b', 'mpl/a'];
    const ids = await Promise.all(keys.map((k) => create(k)));
    for (let n = 1; n <= 3; n++) await part('mpl/a', ids[1] as string, n, Buffer.from(`p${n}`));
    const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket, Prefix: 'mpl/' }));
    expect(uploads.Uploads?.map((u) => [u.Key, u.UploadId])).toEqual([
      ['mpl/a', ids[1]],
      ['mpl/b', ids[0]],
    ]);
    const page = await client.send(
      new ListPartsCommand({ Bucket, Key: 'mpl/a', UploadId: ids[1], PartNumberMarker: '1', MaxParts: 1 }),
    );
    expect(page.Parts?.map((p) => p.PartNumber)).toEqual([2]);
    expect(page.IsTruncated).toBe(true);
    for (const [i, Key] of keys.entries())
      await client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId: ids[i] }));
  });
});

describe('ListObjects (v1) and GetBucketLocation', () => {
  beforeAll(async () => {
    for (const Key of [
      'v1/folder/aSubfolder/subFile1',
      'v1/folder/aSubfolder/subFile2',
      'v1/folder/file1',
      'v1/folder/file2',
      'v1/a b+c',
    ])
      await client.send(new PutObjectCommand({ Bucket, Key, Body: 'x' }));
  });

  it('pages by marker without a delimiter: no NextMarker, the last key is the next marker', async () => {
    const first = await client.send(new ListObjectsCommand({ Bucket, Prefix: 'v1/folder/', MaxKeys: 1 }));
    expect(first.Contents?.map((c) => c.Key)).toEqual(['v1/folder/aSubfolder/subFile1']);
    expect(first.IsTruncated).toBe(true);
    expect(first.NextMarker).toBeUndefined();
    expect(first.Marker).toBe('');
    expect(first.Contents?.[0]?.Owner?.ID).toBeTruthy();
    const keys: string[] = [];
    let Marker: string | undefined;
    for (;;) {
      const page = await client.send(
        new ListObjectsCommand({ Bucket, Prefix: 'v1/folder/', MaxKeys: 2, Marker }),
      );
      keys.push(...(page.Contents ?? []).map((c) => c.Key as string));
      if (!page.IsTruncated) break;
      Marker = page.Contents?.at(-1)?.Key;
    }
    expect(keys).toEqual([
      'v1/folder/aSubfolder/subFile1',
      'v1/folder/aSubfolder/subFile2',
      'v1/folder/file1',
      'v1/folder/file2',
    ]);
  });

  it('rolls up common prefixes with a delimiter, NextMarker naming the last of the page', async () => {
    const page = await client.send(
      new ListObjectsCommand({ Bucket, Prefix: 'v1/folder/', Delimiter: '/', MaxKeys: 1 }),
    );
    expect(page.CommonPrefixes?.map((p) => p.Prefix)).toEqual(['v1/folder/aSubfolder/']);
    expect(page.Contents ?? []).toEqual([]);
    expect(page.NextMarker).toBe('v1/folder/aSubfolder/');
    // A marker inside the rolled-up prefix skips the rest of it.
    const after = await client.send(
      new ListObjectsCommand({
        Bucket,
        Prefix: 'v1/folder/',
        Delimiter: '/',
        Marker: 'v1/folder/aSubfolder/subFile1',
      }),
    );
    expect(after.CommonPrefixes ?? []).toEqual([]);
    expect(after.Contents?.map((c) => c.Key)).toEqual(['v1/folder/file1', 'v1/folder/file2']);
  });

  it('encodes names as forms do with encoding-type=url, which the SDK decodes', async () => {
    const page = await client.send(new ListObjectsCommand({ Bucket, Prefix: 'v1/a', EncodingType: 'url' }));
    expect(page.EncodingType).toBe('url');
    // The SDK leaves the decoding to its caller: the name as sent, form-encoded.
    expect(page.Contents?.map((c) => c.Key)).toEqual(['v1/a+b%2Bc']);
    expect(decodeURIComponent((page.Contents?.[0]?.Key ?? '').replaceAll('+', ' '))).toBe('v1/a b+c');
  });

  it('refuses a bad max-keys or encoding, and a bucket query it does not implement', async () => {
    expect(await refusal(client.send(new ListObjectsCommand({ Bucket, MaxKeys: -1 })))).toEqual({
      status: 400,
      code: 'InvalidArgument',
    });
    expect(
      await refusal(client.send(new ListObjectsCommand({ Bucket, EncodingType: 'x' as 'url' }))),
    ).toEqual({ status: 400, code: 'InvalidArgument' });
    // ?acl names another operation: never answered as a listing.
    expect(await refusal(client.send(new GetBucketAclCommand({ Bucket })))).toEqual({
      status: 501,
      code: 'NotImplemented',
    });
    const location = await client.send(new GetBucketLocationCommand({ Bucket }));
    expect(location.LocationConstraint).toBeUndefined(); // us-east-1: empty, as S3 answers
  });
});

describe('stale multipart uploads', () => {
  it('aborts the uploads created before a time, parts and all, and leaves newer ones', async () => {
    const { DiskObjects } = await import('../src/disk/objects.js');
    const { MultipartUploads } = await import('../src/disk/multipart.js');
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { Readable } = await import('node:stream');
    const root = mkdtempSync(path.join(tmpdir(), 's3-multipart-'));
    try {
      const disk = new DiskObjects(root);
      await disk.init();
      const uploads = new MultipartUploads(root, disk);
      const old = await uploads.create('stale/a', { contentType: 'x/y', metadata: {} });
      await uploads.writePart(old, 'stale/a', 1, Readable.from([Buffer.from('part')]), { maxBytes: 100 });
      const cutoff = Date.now() + 1;
      await new Promise((resolve) => setTimeout(resolve, 5));
      const fresh = await uploads.create('stale/b', { contentType: 'x/y', metadata: {} });
      expect(await uploads.abortStale(cutoff)).toEqual([old]);
      expect((await uploads.list()).map((u) => u.uploadId)).toEqual([fresh]);
      expect(readdirSync(path.join(root, 'multipart'))).toEqual([fresh]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('server-side encryption, which the store does not do', () => {
  it('refuses every way of asking for it rather than storing the object unencrypted', async () => {
    const put = (extra: Partial<ConstructorParameters<typeof PutObjectCommand>[0]>) =>
      refusal(client.send(new PutObjectCommand({ Bucket, Key: 'sse/x', Body: 'x', ...extra })));
    expect(await put({ ServerSideEncryption: 'AES256' })).toEqual({ status: 501, code: 'NotImplemented' });
    expect(await put({ ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'k' })).toEqual({
      status: 501,
      code: 'NotImplemented',
    });
    expect(await put({ ServerSideEncryption: 'rot13' as 'AES256' })).toEqual({
      status: 400,
      code: 'InvalidArgument',
    });
    // SSE-C: over plain HTTP the SDK would refuse to send a key; the header alone is enough to refuse.
    expect(
      await refusal(
        client.send(
          new CreateMultipartUploadCommand({ Bucket, Key: 'sse/y', ServerSideEncryption: 'aws:kms' }),
        ),
      ),
    ).toEqual({ status: 501, code: 'NotImplemented' });
    expect(await refusal(read('sse/x'))).toEqual({ status: 404, code: 'NoSuchKey' });
    // A form's field asks the same.
    const { createPresignedPost } = await import('@aws-sdk/s3-presigned-post');
    const form = await createPresignedPost(client, {
      Bucket,
      Key: 'sse/form',
      Fields: { 'x-amz-server-side-encryption': 'AES256', success_action_status: '201' },
      Expires: 60,
    });
    const data = new FormData();
    for (const [k, v] of Object.entries(form.fields)) data.append(k, v);
    data.append('file', new Blob(['x']), 'x.png');
    const posted = await fetch(form.url, { method: 'POST', body: data });
    expect(posted.status).toBe(501);
    expect(await refusal(read('sse/form'))).toEqual({ status: 404, code: 'NoSuchKey' });
  });
});

describe('after an attacker’s review', () => {
  it('refuses encryption asked for in a presigned URL’s query, as in a header', async () => {
    const { getSignedUrl } = await import('@aws-sdk/s3-request-presigner');
    const url = await getSignedUrl(
      client,
      new PutObjectCommand({ Bucket, Key: 'sse/hoisted', ServerSideEncryption: 'AES256' }),
      { expiresIn: 60, hoistableHeaders: new Set(['x-amz-server-side-encryption']) },
    );
    expect(url).toContain('x-amz-server-side-encryption=AES256');
    const res = await fetch(url, { method: 'PUT', body: 'x' });
    expect(res.status).toBe(501);
    expect(await refusal(read('sse/hoisted'))).toEqual({ status: 404, code: 'NoSuchKey' });
  });

  it('pages uploads of one key by upload-id-marker, seeing each once', async () => {
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await create('page/same'));
    const seen: string[] = [];
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    for (;;) {
      const page = await client.send(
        new ListMultipartUploadsCommand({
          Bucket,
          Prefix: 'page/',
          MaxUploads: 1,
          KeyMarker,
          UploadIdMarker,
        }),
      );
      seen.push(...(page.Uploads ?? []).map((u) => u.UploadId as string));
      if (!page.IsTruncated) break;
      KeyMarker = page.NextKeyMarker;
      UploadIdMarker = page.NextUploadIdMarker;
    }
    expect(seen.sort()).toEqual([...ids].sort());
    for (const UploadId of ids)
      await client.send(new AbortMultipartUploadCommand({ Bucket, Key: 'page/same', UploadId }));
  });

  it('answers max-keys=0 with nothing and nothing more to page to', async () => {
    const page = await client.send(
      new ListObjectsCommand({ Bucket, Prefix: 'v1/', Delimiter: '/', MaxKeys: 0 }),
    );
    expect(page.IsTruncated).toBe(false);
    expect(page.Contents ?? []).toEqual([]);
  });

  it('joins the parts listed even when one is sent again during the completion, or refuses it', async () => {
    const Key = 'mp/raced';
    const UploadId = await create(Key);
    const p1 = await part(Key, UploadId, 1, Buffer.alloc(64 * MiB, 1));
    const p2 = await part(Key, UploadId, 2, Buffer.alloc(10, 2));
    const completing = complete(Key, UploadId, [
      { PartNumber: 1, ETag: p1.ETag as string },
      { PartNumber: 2, ETag: p2.ETag as string },
    ]).catch((err: unknown) => err);
    await new Promise((resolve) => setTimeout(resolve, 30));
    await part(Key, UploadId, 2, Buffer.alloc(10, 3)).catch(() => undefined);
    const done = await completing;
    if (done instanceof S3ServiceException) {
      expect(done.name).toBe('OperationAborted');
    } else {
      const bytes = await read(Key);
      // Whatever was joined is what the ETag says: the listed part 2, never the one sent later.
      expect(bytes.length).toBe(64 * MiB + 10);
      expect(bytes.subarray(-10).equals(Buffer.alloc(10, 2))).toBe(true);
    }
  });

  it('lets an abort during a completion wait for it: no internal error', async () => {
    const Key = 'mp/aborted-late';
    const UploadId = await create(Key);
    const p1 = await part(Key, UploadId, 1, Buffer.alloc(32 * MiB, 7));
    const completing = complete(Key, UploadId, [{ PartNumber: 1, ETag: p1.ETag as string }]).catch(
      (err: unknown) => err,
    );
    await new Promise((resolve) => setTimeout(resolve, 10));
    const aborted = await refusal(
      client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId })),
    ).catch(() => ({ status: 204, code: '' }));
    const done = await completing;
    if (done instanceof S3ServiceException) {
      // On a loaded machine the abort can arrive first: then it wins and the completion finds no upload.
      expect(done.name).toBe('NoSuchUpload');
      expect(aborted.status).toBe(204);
    } else {
      // The abort waited for the completion and then found nothing left to abort.
      expect((done as { ETag?: string }).ETag).toMatch(/-1"$/);
      expect([204, 404]).toContain(aborted.status);
    }
  });
});
